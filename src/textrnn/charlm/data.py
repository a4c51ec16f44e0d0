"""Language-model corpora: strip a Project Gutenberg file down to the book, normalise, split.

The raw file starts with a byte-order mark, uses CRLF line ends and wraps the book in a licence
header and footer marked by ``*** START OF ...`` and ``*** END OF ...`` lines.
"""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

from textrnn.errors import DataError

_START = re.compile(r"^\*\*\* ?START OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE)
_END = re.compile(r"^\*\*\* ?END OF (THE|THIS) PROJECT GUTENBERG EBOOK.*$", re.MULTILINE)
MIN_BOOK_CHARS = 1000  # below this the file cannot be the book, whatever the params say


def normalise_newlines(text: str) -> str:
    return text.replace("\r\n", "\n").replace("\r", "\n")


def strip_gutenberg(text: str, where: str = "text") -> str:
    """Drop the BOM and everything outside the START/END markers; LF line ends.

    Raises DataError when a marker is missing or they are out of order.
    """
    text = normalise_newlines(text.removeprefix("\ufeff"))
    start, end = _START.search(text), _END.search(text)
    if start is None or end is None:
        missing = "START" if start is None else "END"
        raise DataError(f"{where}: the '*** {missing} OF THE PROJECT GUTENBERG EBOOK' marker "
                        "is missing")
    if end.start() < start.end():
        raise DataError(f"{where}: the END marker comes before the START marker")
    return text[start.end():end.start()].strip("\n") + "\n"


def read_gutenberg(path: Path) -> str:
    name = path.name.split(".tmp")[0].lstrip(".")
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise DataError(f"{name}: cannot be read: {exc}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise DataError(f"{name}: not valid UTF-8 at line {line} (byte {exc.start})") from None
    book = strip_gutenberg(text, name)
    if len(book) < MIN_BOOK_CHARS:
        raise DataError(f"{name}: only {len(book)} characters between the markers (truncated?)")
    return book



def clean(text: str, *, lowercase: bool) -> str:
    """Trailing spaces off every line, at most one blank line in a row, optional lowercasing."""
    text = re.sub(r"[ \t]+\n", "\n", text)
    text = re.sub(r"\n{3,}", "\n\n", text)
    return text.lower() if lowercase else text


def profile(text: str) -> dict:
    counts = Counter(text)
    return {
        "characters": len(text),
        "lines": text.count("\n"),
        "distinct_characters": len(counts),
        "words": len(text.split()),
    }


def split_contiguous(text: str, *, train: float, val: float) -> dict[str, str]:
    """Cut the text at two positions: [0, a) train, [a, b) val, [b, end) test.

    Contiguous pieces, because random windows of one book overlap and leak test text into training.
    """
    n = len(text)
    a, b = int(n * train), int(n * (train + val))
    return {"train": text[:a], "val": text[a:b], "test": text[b:]}
