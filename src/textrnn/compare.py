"""`make report`: the workspace compared with the previous commit, as Markdown and HTML.

-> reports/compare.md           params changed, champions, every model's headline metrics
                                (baseline -> workspace), every metric that changed, MLflow run ids
-> reports/plots/index.html     `dvc plots show`: every plot of the workspace
-> reports/plots_diff/index.html `dvc plots diff <baseline>`: the baseline's curves beside the
                                workspace's
The baseline is HEAD; when the workspace holds no change of params or metrics against HEAD (the
run was just committed), it is HEAD~1, so the report always compares the latest run with the one
before. The HTML pages work offline: vega, vega-lite and vega-embed are inlined (fetched once with
`npm pack` into .cache/vega/); without npm they load from a CDN as DVC's own template does.

Usage: textrnn report [--baseline REV] [--out reports]
"""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from textrnn import model_files
from textrnn.errors import UserError
from textrnn.io import write_text

log = logging.getLogger(__name__)

# Versions DVC's own template loads from a CDN (vega 5, vega-lite 5, vega-embed 6), pinned.
VEGA_PACKAGES = {"vega": "5.33.0", "vega-lite": "5.23.0", "vega-embed": "6.29.0"}
VEGA_CACHE = Path(".cache/vega")
HEADLINE = ("accuracy", "f1", "roc_auc", "log_loss", "test_perplexity", "test_bits_per_char",
            "val_perplexity")
TEMPLATE = """<!DOCTYPE html>
<html>
<head>
    {refresh_tag}
    <meta charset="utf-8">
    <title>textrnn: DVC plots</title>
    %(scripts)s
    <style>
        body { font-family: sans-serif; }
        table { border-spacing: 15px; }
    </style>
</head>
<body>
    {plot_divs}
</body>
</html>
"""


# ----------------------------------------------------------------------------- vega, offline


def vega_files(cache: Path = VEGA_CACHE, *, fetch: bool = True) -> list[Path] | None:
    """The three minified bundles (vega, vega-lite, vega-embed, in load order) under ``cache``;
    fetched with ``npm pack`` when missing and ``fetch``. None when they cannot be had."""
    files = [cache / f"{name}-{version}.min.js" for name, version in VEGA_PACKAGES.items()]
    if all(path.is_file() for path in files):
        return files
    npm = shutil.which("npm")
    if not fetch or npm is None:
        return None
    cache.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=cache) as tmp:
        specs = [f"{name}@{version}" for name, version in VEGA_PACKAGES.items()]
        proc = subprocess.run([npm, "pack", "--silent", "--pack-destination", tmp, *specs],
                              capture_output=True, text=True, timeout=300)
        if proc.returncode != 0:
            log.warning("npm pack %s failed: %s", " ".join(specs), proc.stderr.strip()[-300:])
            return None
        for (name, version), path in zip(VEGA_PACKAGES.items(), files, strict=True):
            member = f"package/build/{name}.min.js"
            with tarfile.open(Path(tmp) / f"{name}-{version}.tgz") as archive:
                extracted = archive.extractfile(member)
                if extracted is None:
                    raise UserError(f"{name}@{version}: the npm package lacks {member}")
                path.write_bytes(extracted.read())
    return files


def html_template(scripts: Sequence[Path] | None) -> str:
    """A `dvc plots --html-template` page with the JS inlined (no ``{scripts}`` placeholder, so
    DVC adds no CDN tags), or DVC's CDN tags when ``scripts`` is None."""
    if scripts is None:
        return TEMPLATE % {"scripts": "{scripts}"}
    blocks = []
    for path in scripts:
        code = path.read_text(encoding="utf-8").replace("</script", "<\\/script")
        blocks.append(f"<script>/* {path.name} */\n{code}\n</script>")
    return TEMPLATE % {"scripts": "\n".join(blocks)}


# ----------------------------------------------------------------------------- dvc and git


def _run(args: list[str], root: Path, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run(args, cwd=root, capture_output=True, text=True, timeout=600)
    if check and proc.returncode != 0:
        raise UserError(f"`{' '.join(args[2:] if args[1:2] == ['-m'] else args)}` failed: "
                        f"{' '.join(proc.stderr.split())[-400:]}")
    return proc


def dvc(root: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return _run([sys.executable, "-m", "dvc", *args], root, check)


def dvc_json(root: Path, *args: str) -> dict[str, Any]:
    out = dvc(root, *args, "--json").stdout.strip()
    return json.loads(out) if out else {}


def git(root: Path, *args: str) -> str | None:
    proc = _run(["git", *args], root, check=False)
    return proc.stdout.strip() if proc.returncode == 0 else None


def choose_baseline(root: Path, requested: str | None) -> tuple[str, str]:
    """(revision, why): the requested one, else HEAD, else HEAD~1 when the workspace equals HEAD."""
    if requested:
        return requested, "requested"
    if git(root, "rev-parse", "--verify", "-q", "HEAD") is None:
        raise UserError("no commit to compare with: commit a run first (git commit)")
    changed = dvc_json(root, "metrics", "diff", "HEAD") or dvc_json(root, "params", "diff", "HEAD")
    if not changed and git(root, "rev-parse", "--verify", "-q", "HEAD~1") is not None:
        return "HEAD~1", "the workspace holds no change against HEAD, so HEAD is the latest run"
    return "HEAD", "the latest commit"


# ----------------------------------------------------------------------------- the Markdown


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return "—" if value is None else str(value)


def _change(entry: dict[str, Any]) -> str:
    old, new, diff = entry.get("old"), entry.get("new"), entry.get("diff")
    if old == new:
        return _number(new)
    text = f"{_number(old)} → {_number(new)}"
    return f"{text} ({diff:+.4g})" if isinstance(diff, int | float) else text


def model_rows(diff: dict[str, dict[str, Any]]) -> tuple[list[str], dict[str, dict[str, Any]]]:
    """For a metrics file keyed by model: (headline metrics present, {model: {metric: entry}})."""
    rows: dict[str, dict[str, Any]] = {}
    for key, entry in diff.items():
        model, _, metric = key.partition(".")
        if metric in HEADLINE:
            rows.setdefault(model, {})[metric] = entry
    columns = [m for m in HEADLINE if any(m in row for row in rows.values())]
    return columns, dict(sorted(rows.items()))


def run_ids(root: Path, task: str, models: Sequence[str]) -> dict[str, str]:
    """{model: MLflow run id} from models/<task>/<model>/model/meta.json of the workspace."""
    found = {}
    for model in models:
        try:   # only the run id is wanted: the rest of meta.json is not checked here
            meta = model_files.read_json(root / "models" / task / model / "model" / "meta.json")
        except UserError:
            continue   # a model without a readable meta.json: its row shows no run
        if isinstance(meta, dict) and meta.get("mlflow_run_id"):
            found[model] = str(meta["mlflow_run_id"])
    return found


def champion(root: Path, task: str, rev: str | None) -> str | None:
    """The champion's name in models/<task>/champion.json (of ``rev``, or of the workspace);
    None when the file is missing or not a valid champion.json."""
    path = f"models/{task}/champion.json"
    text = git(root, "show", f"{rev}:{path}") if rev else _read(root / path)
    if not text:
        return None
    try:
        return model_files.champion_from(json.loads(text), f"{rev}:{path}" if rev else path).model
    except (ValueError, UserError):
        return None


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        return None


def markdown(*, baseline: str, why: str, described: str, metrics: dict[str, dict],
             params: dict[str, dict], champions: dict[str, tuple[str | None, str | None]],
             runs: dict[str, dict[str, str]], pages: dict[str, str]) -> str:
    lines = [f"# Workspace compared with {baseline}", "",
             f"Baseline: `{baseline}` ({described}; {why}). Written by `make report` from "
             "`dvc params diff`, `dvc metrics diff` and `dvc plots diff`; open the MLflow runs "
             "with `make ui`.", ""]
    lines += ["## Plots", ""] + [f"- [{title}]({href})" for title, href in pages.items()] + [""]
    lines += ["## Champions", "", f"| task | {baseline} | workspace |", "|---|---|---|"]
    lines += [f"| {task} | {_number(old)} | {_number(new)} |"
              for task, (old, new) in champions.items()] + [""]
    lines += ["## Params changed", ""]
    changed = {(f, k): e for f, entries in params.items() for k, e in entries.items()}
    if changed:
        lines += [f"| param | {baseline} | workspace |", "|---|---|---|"]
        lines += [f"| `{key}` | {_number(e.get('old'))} | {_number(e.get('new'))} |"
                  for (_, key), e in sorted(changed.items())]
    else:
        lines.append("None.")
    lines.append("")
    for path, diff in metrics.items():
        columns, rows = model_rows(diff)
        if not rows:
            continue
        task = Path(path).stem
        lines += [f"## Models: `{path}`", "",
                  f"Each cell: {baseline} → workspace (change); one value when unchanged.", "",
                  "| model | " + " | ".join(columns) + " | MLflow run |",
                  "|---" * (len(columns) + 2) + "|"]
        for model, row in rows.items():
            cells = [_change(row[c]) if c in row else "—" for c in columns]
            run = runs.get(task, {}).get(model)
            lines.append(f"| {model} | " + " | ".join(cells) + f" | {f'`{run}`' if run else '—'} |")
        lines.append("")
    lines += ["## Every metric that changed", ""]
    moved = [(path, key, e) for path, diff in metrics.items() for key, e in sorted(diff.items())
             if e.get("old") != e.get("new")]
    if moved:
        lines += [f"| file | metric | {baseline} | workspace | change |", "|---|---|---|---|---|"]
        lines += [f"| {path} | `{key}` | {_number(e.get('old'))} | {_number(e.get('new'))} | "
                  f"{_number(e.get('diff'))} |" for path, key, e in moved]
    else:
        lines.append("None.")
    return "\n".join(lines) + "\n"


# ----------------------------------------------------------------------------- the report


def make_report(root: Path = Path("."), out: Path = Path("reports"), baseline: str | None = None,
                *, vega_cache: Path | None = None, fetch_vega: bool = True) -> Path:
    """Write ``out``/compare.md, ``out``/plots/index.html and ``out``/plots_diff/index.html."""
    root, out = Path(root).resolve(), Path(out)
    out = out if out.is_absolute() else root / out
    rev, why = choose_baseline(root, baseline)
    out.mkdir(parents=True, exist_ok=True)
    described = git(root, "log", "-1", "--format=%h %s", rev) or rev
    scripts = vega_files(vega_cache or root / VEGA_CACHE, fetch=fetch_vega)
    if scripts is None:
        log.warning("vega JS not available offline (no npm): the HTML loads it from a CDN")
    with tempfile.TemporaryDirectory() as tmp:
        template = Path(tmp) / "template.html"
        template.write_text(html_template(scripts), encoding="utf-8")
        pages = (("plots", ["plots", "show"]), ("plots_diff", ["plots", "diff", rev]))
        for folder, command in pages:
            shutil.rmtree(out / folder, ignore_errors=True)
            dvc(root, *command, "-o", str(out / folder), "--html-template", str(template))
    metrics = dvc_json(root, "metrics", "diff", rev, "--all")
    params = dvc_json(root, "params", "diff", rev)
    tasks = ("sentiment", "charlm")
    runs = {task: run_ids(root, task, model_rows(metrics.get(f"metrics/{task}.json", {}))[1])
            for task in tasks}
    report = out / "compare.md"
    write_text(report, markdown(
        baseline=rev, why=why, described=described, metrics=metrics, params=params,
        champions={task: (champion(root, task, rev), champion(root, task, None)) for task in tasks},
        runs=runs, pages={"All plots of the workspace (`dvc plots show`)": "plots/index.html",
                          f"{rev} beside the workspace (`dvc plots diff {rev}`)":
                          "plots_diff/index.html"}))
    return report
