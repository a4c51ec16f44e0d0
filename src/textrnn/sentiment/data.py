"""Sentiment datasets: parse the raw archives, clean, validate the content, profile.

The real files have traps (see ../shared/data/README.md): quote characters that make a CSV reader
merge lines, characters that ``str.splitlines`` treats as line breaks, HTML tags in IMDb reviews.
So lines are split on ``\\n`` only and no CSV reader is involved.
"""

from __future__ import annotations

import html
import re
import tarfile
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pandas as pd

from textrnn.errors import DataError

LABEL_NAMES = {"0": "negative", "1": "positive", "neg": "negative", "pos": "positive"}
UCI_FILES = {  # origin -> member file name inside the zip's folder
    "amazon": "amazon_cells_labelled.txt",
    "imdb": "imdb_labelled.txt",
    "yelp": "yelp_labelled.txt",
}
UCI_ROWS_PER_FILE = 1000
IMDB_PER_CLASS_PER_SPLIT = 12500
_IMDB_MEMBER = re.compile(r"(?:^|/)aclImdb/(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_IMDB_UNLABELLED = re.compile(r"(?:^|/)aclImdb/train/unsup/(\d+)_0\.txt$")
IMDB_UNLABELLED = 50000
_TAG = re.compile(r"<[^>]{0,100}>")
_SPACE = re.compile(r"\s+")


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{where}: not valid UTF-8 at line {line} (byte {exc.start})") from None


def parse_labelled_lines(text: str, where: str, origin: str) -> pd.DataFrame:
    """Parse ``sentence<TAB>label`` lines. Splits on ``\\n`` only, never on other line breaks."""
    texts, labels = [], []
    for lineno, line in enumerate(text.split("\n"), start=1):
        line = line.rstrip("\r")
        if not line.strip():
            continue
        sentence, sep, label = line.rpartition("\t")
        label = label.strip()
        if not sep or label not in ("0", "1"):
            raise DataError(
                f"{where}: line {lineno}: expected 'sentence<TAB>0|1', got {line[:60]!r}"
            )
        texts.append(sentence)
        labels.append(LABEL_NAMES[label])
    return pd.DataFrame({"text": texts, "label": labels, "origin": origin})


def _check_counts(frame: pd.DataFrame, where: str, expected_per_label: int) -> None:
    counts = frame["label"].value_counts()
    expected = {"negative": expected_per_label, "positive": expected_per_label}
    found = {label: int(counts.get(label, 0)) for label in expected}
    if found != expected or len(frame) != 2 * expected_per_label:
        raise DataError(
            f"{where}: expected {2 * expected_per_label} rows ({expected_per_label} per label), "
            f"found {len(frame)} ({', '.join(f'{k}: {v}' for k, v in found.items())})"
        )


def read_uci(path: Path) -> pd.DataFrame:
    """The UCI zip as a table: text, label (negative/positive), origin (amazon/imdb/yelp)."""
    name = path.name.split(".tmp")[0].lstrip(".")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError) as exc:
        raise DataError(f"{name}: not a readable zip archive (truncated or corrupted?): "
                        f"{exc}") from None
    frames = []
    with archive:
        members = {Path(m).name: m for m in archive.namelist() if not m.startswith("__MACOSX")}
        for origin, filename in UCI_FILES.items():
            if filename not in members:
                raise DataError(f"{name}: member {filename} is missing from the archive")
            where = f"{name}:{filename}"
            try:
                data = archive.read(members[filename])
            except (zipfile.BadZipFile, OSError, EOFError) as exc:
                raise DataError(f"{where}: cannot be read (truncated archive?): {exc}") from None
            frame = parse_labelled_lines(_decode(data, where), where, origin)
            _check_counts(frame, where, UCI_ROWS_PER_FILE // 2)
            frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def read_imdb(path: Path) -> pd.DataFrame:
    """The IMDb tarball as a table: text, label, origin (the upstream split: train/test)."""
    name = path.name.split(".tmp")[0].lstrip(".")
    rows = []
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                match = _IMDB_MEMBER.search(member.name)
                if not match or not member.isfile():
                    continue
                split, polarity, _, _ = match.groups()
                handle = archive.extractfile(member)
                text = _decode(handle.read(), f"{name}:{member.name}")
                rows.append((text, LABEL_NAMES[polarity], split))
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{name}: not a readable tar.gz archive (truncated or corrupted?): "
                        f"{exc}") from None
    # Upstream test first, so that deduplication keeps the test copy of a review that both hold.
    frame = pd.DataFrame(rows, columns=["text", "label", "origin"]).sort_values(
        "origin", kind="stable", ignore_index=True)
    for split in ("train", "test"):
        _check_counts(frame[frame["origin"] == split], f"{name}:aclImdb/{split}",
                      IMDB_PER_CLASS_PER_SPLIT)
    return frame


def read_imdb_unlabelled(path: Path) -> list[str]:
    """The 50,000 unlabelled reviews of the IMDb tarball (``aclImdb/train/unsup/``), in id order.
    None of them is a labelled review, so none is a text of a sentiment split."""
    name = path.name.split(".tmp")[0].lstrip(".")
    found = {}
    try:
        with tarfile.open(path, "r:gz") as archive:
            for member in archive:
                match = _IMDB_UNLABELLED.search(member.name)
                if match and member.isfile():
                    found[int(match.group(1))] = _decode(archive.extractfile(member).read(),
                                                         f"{name}:{member.name}")
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(f"{name}: not a readable tar.gz archive (truncated or corrupted?): "
                        f"{exc}") from None
    if len(found) != IMDB_UNLABELLED:
        raise DataError(f"{name}:aclImdb/train/unsup holds {len(found)} reviews, expected "
                        f"{IMDB_UNLABELLED} (an archive without the unlabelled reviews? set "
                        "embeddings.unlabelled: false)")
    return [found[key] for key in sorted(found)]


def clean_text(text: str, *, strip_html: bool) -> str:
    """Unescape entities, drop tags (``<br />``), fold every kind of whitespace into one space."""
    if strip_html:
        text = _TAG.sub(" ", html.unescape(text))
    return _SPACE.sub(" ", text).strip()


def normalise_for_dedup(text: str) -> str:
    """The key under which two texts count as the same: whitespace and case folded."""
    return _SPACE.sub(" ", text).strip().casefold()


def clean(frame: pd.DataFrame, *, strip_html: bool,
          drop_duplicates: bool) -> tuple[pd.DataFrame, int]:
    """Clean texts, drop empty ones, optionally drop repeated (text, label) rows.

    Returns the cleaned table and the number of duplicate rows dropped.
    """
    frame = frame.assign(text=[clean_text(t, strip_html=strip_html) for t in frame["text"]])
    frame = frame[frame["text"] != ""]
    dropped = 0
    if drop_duplicates:
        key = frame["text"].map(normalise_for_dedup) + "\x00" + frame["label"]
        keep = ~key.duplicated()
        dropped = int((~keep).sum())
        frame = frame[keep]
    return frame.reset_index(drop=True), dropped


def profile(raw_rows: int, frame: pd.DataFrame, duplicates_removed: int) -> dict:
    """Rows, duplicates removed, label balance per origin, length percentiles in tokens."""
    lengths = frame["text"].str.split().str.len().to_numpy()
    balance = (
        frame.groupby(["origin", "label"]).size().unstack(fill_value=0).astype(int).to_dict("index")
    )
    return {
        "rows_raw": int(raw_rows),
        "rows": int(len(frame)),
        "duplicates_removed": int(duplicates_removed),
        "classes": sorted(frame["label"].unique().tolist()),
        "label_balance": {origin: {k: int(v) for k, v in counts.items()}
                          for origin, counts in balance.items()},
        "length_tokens": {
            "mean": round(float(lengths.mean()), 2),
            **{f"p{q}": float(np.percentile(lengths, q)) for q in (50, 90, 95, 99)},
            "max": int(lengths.max()),
        },
    }
