"""A user's own data: a labelled table (CSV, TSV, Parquet) or a text file / folder of text files
(subtitle files, .srt, give their dialogue only).

Every problem is a DataError naming the file and, where it applies, the line. Validation runs
before anything is written, so a bad file leaves the pipeline's outputs as they were.
"""

from __future__ import annotations

import csv
import io
import math
import re
from pathlib import Path

import pandas as pd

from textrnn.charlm import data as charlm_data
from textrnn.errors import DataError

SPLIT_VALUES = ("train", "val", "test")
_SEPARATORS = {".csv": ",", ".tsv": "\t", ".tab": "\t"}
TEXT_SUFFIXES = (".txt", ".md", ".text")
SUBTITLE_SUFFIXES = (".srt",)
# A SubRip timing line: 00:00:01,000 --> 00:00:02,500 ('.' for ',' too), maybe with coordinates.
_TIME = r"\d+:\d{1,2}:\d{1,2}[,.]\d{1,3}"
_TIMING = re.compile(rf"\s*{_TIME}\s*-->\s*{_TIME}(\s.*)?")
# Formatting that is not dialogue: HTML-like tags (<i>, </font>) and ASS overrides ({\an8}).
_TAGS = re.compile(r"<[^<>\n]*>|\{\\[^{}\n]*\}")


def is_url(path: str) -> bool:
    return path.startswith(("http://", "https://"))


def check_size(path: Path, max_megabytes: float) -> None:
    """Say up front when a file (or folder) is over the memory budget, before reading it."""
    if not path.exists():
        raise DataError(f"{path}: file not found (data.custom.*.path is read from the "
                        "repository root)")
    size = (sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir()
            else path.stat().st_size)
    if size > max_megabytes * 1e6:
        raise DataError(
            f"{path}: {size / 1e6:.0f} MB is over the memory budget of {max_megabytes:g} MB "
            "(data.custom.max_megabytes); sample the file or raise the budget"
        )


def decode(data: bytes, where: str, encoding: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as exc:
        line = data[: exc.start].count(b"\n") + 1
        raise DataError(f"{where}: not valid {encoding} at line {line} "
                        f"(byte {exc.start})") from None
    except LookupError:
        raise DataError(f"{where}: unknown encoding {encoding!r}") from None


def _separator(path: Path, text: str, sep: str) -> str:
    if sep != "auto":
        return sep
    if path.suffix.lower() in _SEPARATORS:
        return _SEPARATORS[path.suffix.lower()]
    try:
        return csv.Sniffer().sniff(text[:65536], delimiters=",\t;|").delimiter
    except csv.Error:
        raise DataError(f"{path}: cannot detect the column separator; "
                        "set data.custom.sep") from None


def read_table(path: Path, *, sep: str, encoding: str, quoting: str) -> pd.DataFrame:
    """Every column as strings; no NA guessing ("NA" or "null" stay texts)."""
    if path.suffix.lower() == ".parquet":
        try:
            frame = pd.read_parquet(path)
        except Exception as exc:  # noqa: BLE001 (pyarrow raises many kinds for a bad file)
            raise DataError(f"{path}: not a readable Parquet file: {exc}") from None
        return frame.astype(str).where(frame.notna(), "")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{path}: cannot be read: {exc.strerror}") from None
    text = decode(data, str(path), encoding).removeprefix("\ufeff")
    if not text.strip():
        raise DataError(f"{path}: the file is empty")
    try:
        return pd.read_csv(
            io.StringIO(text), sep=_separator(path, text, sep), dtype=str, keep_default_na=False,
            quoting=csv.QUOTE_NONE if quoting == "none" else csv.QUOTE_MINIMAL,
        )
    except (pd.errors.ParserError, csv.Error) as exc:
        raise DataError(f"{path}: {' '.join(str(exc).split())}") from None


def to_standard_table(frame: pd.DataFrame, where: str, *, text_column: str, label_column: str,
                      split_column: str | None, on_empty: str) -> tuple[pd.DataFrame, int]:
    """Columns text, label, origin (the split column's value, or 'custom'); empty rows counted.

    Returns the table and the number of rows dropped for an empty text or label.
    """
    wanted = [text_column, label_column] + ([split_column] if split_column else [])
    missing = [name for name in wanted if name not in frame.columns]
    if missing:
        raise DataError(f"{where}: column {missing[0]!r} not found; the columns are: "
                        + ", ".join(map(repr, frame.columns)))
    table = pd.DataFrame({
        "text": frame[text_column].astype(str),
        "label": frame[label_column].astype(str).str.strip(),
        "origin": frame[split_column].astype(str).str.strip() if split_column else "custom",
    })
    empty = (table["text"].str.strip() == "") | (table["label"] == "")
    if empty.any():
        lines = (empty[empty].index[:5] + 2).tolist()  # +2: the header line, 1-based
        detail = f"{int(empty.sum())} rows with an empty text or label (first at lines {lines})"
        if on_empty == "fail":
            raise DataError(f"{where}: {detail}; set data.custom.on_empty: drop to skip them")
        table = table[~empty]
    if split_column:
        unknown = sorted(set(table["origin"]) - set(SPLIT_VALUES))
        if unknown:
            raise DataError(f"{where}: split column {split_column!r} holds unknown values "
                            f"{unknown[:5]}; allowed: {', '.join(SPLIT_VALUES)}")
        if "test" not in set(table["origin"]):
            raise DataError(f"{where}: split column {split_column!r} marks no row as 'test'")
    return table.reset_index(drop=True), int(empty.sum())


def check_classes(table: pd.DataFrame, where: str, *,
                  smallest_fraction: float | None = None) -> None:
    """Two classes at least, and each big enough that every split gets an example of it."""
    counts = table["label"].value_counts()
    if len(counts) < 2:
        raise DataError(f"{where}: every row has the label {counts.index[0]!r}; "
                        "a classifier needs at least two classes")
    if smallest_fraction is None:
        return
    needed = max(3, math.ceil(1 / smallest_fraction))
    small = counts[counts < needed]
    if len(small):
        raise DataError(
            f"{where}: class {small.index[0]!r} has {int(small.iloc[0])} examples; the split "
            f"needs at least {needed} per class so that each split gets one"
        )


def subtitle_dialogue(text: str, where: str) -> str:
    """The dialogue of a SubRip (.srt) subtitle file: the text lines of every cue, one per line,
    without cue numbers, timings or formatting tags (``<i>``, ``{\\an8}``).

    ``text`` has LF line ends. A cue is a number line, a timing line
    (``00:00:01,000 --> 00:00:02,000``; ``.`` for ``,`` is read too) and its text lines, up to the
    next cue; blank lines and a missing final blank line are tolerated.
    """
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if _TIMING.fullmatch(line)]
    if not starts:
        raise DataError(f"{where}: no subtitle cue found (expected 'N', "
                        "'hh:mm:ss,mmm --> hh:mm:ss,mmm', text lines)")
    dialogue = []
    for n, start in enumerate(starts):
        body = lines[start + 1: starts[n + 1] if n + 1 < len(starts) else len(lines)]
        if n + 1 < len(starts) and body and body[-1].strip().isdigit():
            body = body[:-1]                            # the next cue's number
        for line in body:
            line = " ".join(_TAGS.sub("", line).split())
            if line:
                dialogue.append(line)
    return "\n".join(dialogue)


def read_text_corpus(path: Path, encoding: str) -> str:
    """A text file, or every text file of a folder (sorted by name, joined by a blank line).

    Gutenberg licence header and footer are stripped only when the markers are present. A
    subtitle file (.srt) gives its dialogue only (:func:`subtitle_dialogue`).
    """
    suffixes = TEXT_SUFFIXES + SUBTITLE_SUFFIXES
    files = (sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
             if path.is_dir() else [path])
    if not files:
        raise DataError(f"{path}: the folder holds no text files ({', '.join(suffixes)})")
    texts = []
    for file in files:
        text = charlm_data.normalise_newlines(decode(file.read_bytes(), str(file), encoding)
                                              .removeprefix("\ufeff"))
        if file.suffix.lower() in SUBTITLE_SUFFIXES:
            text = subtitle_dialogue(text, str(file))
        elif "*** START OF" in text and "*** END OF" in text:
            text = charlm_data.strip_gutenberg(text, str(file))
        if text.strip():
            texts.append(text.strip("\n") + "\n")
    if not texts:
        raise DataError(f"{path}: no text in {'the folder' if path.is_dir() else 'the file'}")
    return "\n".join(texts)


def load_table(path: Path, cfg) -> tuple[pd.DataFrame, int]:
    """Read and validate a user's table (``cfg``: CustomTableParams)
    -> (text/label/origin, dropped)."""
    check_size(path, cfg.max_megabytes)
    frame = read_table(path, sep=cfg.sep, encoding=cfg.encoding, quoting=cfg.quoting)
    table, dropped = to_standard_table(frame, str(path), text_column=cfg.text_column,
                                       label_column=cfg.label_column,
                                       split_column=cfg.split_column, on_empty=cfg.on_empty)
    check_classes(table, str(path))
    return table, dropped


def load_text(path: Path, cfg) -> str:
    """Read and validate a user's text file or folder (``cfg``: CustomTextParams)."""
    check_size(path, cfg.max_megabytes)
    return read_text_corpus(path, cfg.encoding)
