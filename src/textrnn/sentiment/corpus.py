"""The IMDb archive as a corpus without labels, for the stages that learn from raw reviews
(``embed``: word vectors; ``pretrain_lm``: a language model)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from textrnn.data.sources import MIRROR_ENV, fetch
from textrnn.sentiment.data import (
    clean_text,
    normalise_for_dedup,
    read_imdb,
    read_imdb_unlabelled,
)


def imdb_corpus(held_out: Iterable[str], *, unlabelled: bool, timeout_s: float,
                retries: int) -> tuple[list[str], int]:
    """Reviews of the IMDb archive to learn from without labels (word vectors, language model):
    the 50,000 labelled ones and, with ``unlabelled``, the 50,000 of ``train/unsup/``, cleaned,
    labels never read, minus every review whose text is one of ``held_out`` (the sentiment val
    and test texts), compared with case and spacing folded. Returns (reviews, how many were
    left out). The archive is fetched like any dataset (the mirror of $TEXTRNN_DATA_MIRROR, else
    a download)."""
    with tempfile.TemporaryDirectory(prefix="textrnn-imdb-") as tmp:
        path = fetch("imdb", Path(tmp), timeout_s=timeout_s, retries=retries,
                     mirror=os.environ.get(MIRROR_ENV) or None)
        texts = [*read_imdb(path).text, *(read_imdb_unlabelled(path) if unlabelled else [])]
    keys = {normalise_for_dedup(text) for text in held_out}
    cleaned = [clean_text(text, strip_html=True) for text in texts]
    kept = [text for text in cleaned if normalise_for_dedup(text) not in keys]
    return kept, len(cleaned) - len(kept)
