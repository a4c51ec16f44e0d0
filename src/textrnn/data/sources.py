"""The fetch step: a declared dataset's raw file from a local mirror or upstream, through one
validation (the dataset's own reader).

A raw file is written to a temporary name and renamed into place only once it is complete and
valid, so nothing half-written is ever left behind.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from textrnn.datasets import Dataset, get_dataset
from textrnn.errors import DataError

log = logging.getLogger(__name__)

MIRROR_ENV = "TEXTRNN_DATA_MIRROR"  # a folder holding the same files as the upstream addresses


def get_source(name: str) -> Dataset:
    """The declared dataset ``name`` (:mod:`textrnn.datasets`): its file, addresses and reader."""
    return get_dataset(name)


def _download(url: str, dest: Path, *, timeout_s: float) -> None:
    """Stream ``url`` into ``dest`` with a progress bar."""
    import requests
    from tqdm import tqdm

    with requests.get(url, stream=True, timeout=timeout_s) as response:
        response.raise_for_status()
        total = int(response.headers.get("content-length", 0)) or None
        with open(dest, "wb") as out, tqdm(
            total=total, unit="B", unit_scale=True, desc=dest.name.split(".tmp")[0], leave=False
        ) as bar:
            for chunk in response.iter_content(chunk_size=1 << 16):
                out.write(chunk)
                bar.update(len(chunk))


def _download_with_retries(url: str, dest: Path, *, timeout_s: float, retries: int) -> str | None:
    """Download with retries and backoff; None on success, else why the last attempt failed."""
    for attempt in range(retries + 1):
        try:
            log.info("downloading %s (attempt %d)", url, attempt + 1)
            _download(url, dest, timeout_s=timeout_s)
            return None
        except Exception as exc:  # noqa: BLE001 (requests/OS errors: all mean retry)
            reason = f"{type(exc).__name__}: {' '.join(str(exc).split())[:120]}"
            if attempt < retries:
                time.sleep(min(2**attempt, 10))
    return reason


def fetch_custom(location: str, out_dir: Path, *, timeout_s: float, retries: int,
                 validate: Callable[[Path], None]) -> Path:
    """Copy a user's file or folder (or download a URL) into ``out_dir`` after ``validate``."""
    from textrnn.data.custom import is_url

    if not location:
        raise DataError("the custom dataset has no path: set data.custom.<task>.path")
    name = Path(location.split("?")[0].rstrip("/")).name or "data"
    final, tmp = out_dir / name, out_dir / f".tmp-{name}"  # keeps the suffix the reader needs
    try:
        if is_url(location):
            failure = _download_with_retries(location, tmp, timeout_s=timeout_s, retries=retries)
            if failure:
                raise DataError(f"could not download {location}: {failure}")
        elif Path(location).is_dir():
            validate(Path(location))
            shutil.copytree(location, tmp)
        else:
            validate(Path(location))
            shutil.copyfile(location, tmp)
        if is_url(location):
            validate(tmp)
        os.replace(tmp, final)
        return final
    finally:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)


def _validate(source: Dataset, path: Path, *, origin: str) -> None:
    """The dataset's reader as the content check, after one that names an empty file as such."""
    if path.stat().st_size == 0:
        raise DataError(f"{source.filename}: the file is empty (0 bytes), from {origin}")
    source.read(path)


def fetch(name: str, out_dir: Path, *, timeout_s: float, retries: int,
          mirror: str | None = None) -> Path:
    """Put dataset ``name``'s raw file into ``out_dir``, from ``mirror`` if it holds it, else
    upstream.

    Returns the final path. Raises DataError with every place it looked when nothing worked.
    """
    source = get_source(name)
    out_dir.mkdir(parents=True, exist_ok=True)
    final = out_dir / source.filename
    tmp = out_dir / f".{source.filename}.tmp"
    tried: list[str] = []
    try:
        if mirror:
            candidate = Path(mirror) / source.filename
            if candidate.is_file():
                log.info("fetch %s: copying from mirror %s", name, candidate)
                shutil.copyfile(candidate, tmp)
                # A mirror copy that fails validation is an error, not a reason to download:
                # the user pointed at it on purpose.
                _validate(source, tmp, origin=str(candidate))
                os.replace(tmp, final)
                return final
            tried.append(f"{candidate} (not found; {MIRROR_ENV}={mirror})")
        for url in source.urls:
            failure = _download_with_retries(url, tmp, timeout_s=timeout_s, retries=retries)
            if failure:
                tried.append(f"{url} ({failure})")
                continue
            _validate(source, tmp, origin=url)
            os.replace(tmp, final)
            return final
        hint = "" if mirror else f"; set {MIRROR_ENV} to a folder holding {source.filename}"
        raise DataError(f"could not fetch {source.filename}: looked in " + "; ".join(tried) + hint)
    finally:
        tmp.unlink(missing_ok=True)
