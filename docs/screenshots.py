"""`make screenshots`: copy the screenshots that the browser tests took into docs/images/.

The browser tests (tests/service/test_browser_serving.py, tests/team/test_browser_mlflow.py)
save PNGs under test-artifacts/; the pages show three of them under stable names:

    test-artifacts/serving-page.png         -> docs/images/web-page.png        (docs/serving.md)
    test-artifacts/serving-page-explain.png -> docs/images/web-page-explain.png (docs/serving.md)
    test-artifacts/mlflow_compare_runs.png  -> docs/images/mlflow-compare.png  (docs/tracking.md)

Each is cut to the part worth showing (a box in the screenshot's pixels: the page's column
without its white margins; the MLflow page without its assistant panel), scaled down to at most
MAX_WIDTH pixels wide and written as a 256-colour PNG, so a refresh keeps the repository small.
A screenshot that is missing, or older than the file given with --since (make touches one before
the tests run: a skipped test leaves the previous run's file behind), stops the copy with one
line saying which test did not write it.

    python docs/screenshots.py [--since FILE]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
IMAGES = ROOT / "docs" / "images"
MAX_WIDTH = 1000        # pixels: the width of the page's text column, at most
MAX_BYTES = 300_000     # a larger result is an error: lower MAX_WIDTH or crop more

# (file in test-artifacts/, file in docs/images/, box kept (left, top, right, bottom), the test
# that writes it). The boxes fit the tests' window sizes (1100x1000 and 1400x2200 pixels).
SHOTS = [
    ("serving-page.png", "web-page.png", (150, 0, 950, 800),
     "tests/service/test_browser_serving.py::test_sentiment_and_generation_in_the_page"),
    ("serving-page-explain.png", "web-page-explain.png", (150, 0, 950, 800),
     "tests/service/test_browser_serving.py::test_why_colours_each_word_by_its_attribution"),
    ("mlflow_compare_runs.png", "mlflow-compare.png", (0, 0, 1040, 2100),
     "tests/team/test_browser_mlflow.py::test_mlflow_compare_page_shows_the_models_and_a_metric"),
]


def shrink(source: Path, target: Path, box: tuple[int, int, int, int]) -> tuple[int, int]:
    """``source`` cut to ``box`` (within its bounds) and scaled to MAX_WIDTH -> ``target``."""
    from PIL import Image  # Pillow: installed with matplotlib, which requires it

    with Image.open(source) as image:
        image = image.convert("RGB")
        left, top, right, bottom = box
        image = image.crop((left, top, min(right, image.width), min(bottom, image.height)))
        if image.width > MAX_WIDTH:
            height = round(image.height * MAX_WIDTH / image.width)
            image = image.resize((MAX_WIDTH, height), Image.Resampling.LANCZOS)
        # a screenshot has few colours: a 256-colour palette looks the same at a third the size
        image = image.quantize(colors=256, method=Image.Quantize.MEDIANCUT)
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        image.save(tmp, format="PNG", optimize=True)
        tmp.replace(target)
        return image.size


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--since", type=Path,
                        help="refuse screenshots older than this file (touched before the tests)")
    args = parser.parse_args()
    since = args.since.stat().st_mtime if args.since else None
    problems = []
    for name, _, _, test in SHOTS:
        path = ARTIFACTS / name
        if not path.is_file():
            problems.append(f"test-artifacts/{name} is missing: {test} did not write it")
        elif since is not None and path.stat().st_mtime < since:
            problems.append(f"test-artifacts/{name} is from an earlier run: {test} did not run "
                            "to its screenshot (skipped? TEXTRNN_DATA_MIRROR must name the raw "
                            "data for the MLflow test)")
    if problems:
        for problem in problems:
            print(f"error: {problem}", file=sys.stderr)
        return 1
    for name, target_name, box, _ in SHOTS:
        target = IMAGES / target_name
        width, height = shrink(ARTIFACTS / name, target, box)
        size = target.stat().st_size
        print(f"screenshots: test-artifacts/{name} -> docs/images/{target_name} "
              f"({width}x{height}, {size // 1000} KB)")
        if size > MAX_BYTES:
            print(f"error: docs/images/{target_name} is {size // 1000} KB, over "
                  f"{MAX_BYTES // 1000} KB: lower MAX_WIDTH or its height in docs/screenshots.py",
                  file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
