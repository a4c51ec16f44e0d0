"""Where studies live (SQLite file or PostgreSQL) and the cross-process lock on trial claims.

SQLite: a file lock (flock) beside the database, for workers on one machine. PostgreSQL: a
session advisory lock, for workers on any number of machines.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from textrnn.errors import ParamsError, UserError
from textrnn.io import file_lock
from textrnn.paths import local_store_uri, project_dir


def sqlite_path(url: str) -> Path | None:
    """The file of a ``sqlite:///relative`` or ``sqlite:////absolute`` URL, else None; a relative
    one under the project folder (:func:`textrnn.paths.project_dir`: a queued DVC experiment
    shares the project's studies)."""
    if not url.startswith("sqlite:///"):
        return None
    return Path(local_store_uri(url).removeprefix("sqlite:///"))


def lock_path(path: Path) -> Path:
    """The lock file beside the SQLite file ``path``."""
    return path.with_name(f"{path.name}.lock")


POSTGRES_PREFIXES = ("postgresql://", "postgresql+psycopg://", "postgresql+psycopg2://")


def engine_url(url: str) -> str:
    """The SQLAlchemy URL of the study store ``url``.

    Returns a PostgreSQL URL with the pinned driver, psycopg 3, named (``postgresql+psycopg://``):
    for ``postgresql://``, and for ``postgresql+psycopg2://`` too (psycopg2, the driver pinned
    before, is no longer installed), so a params.yaml written for it keeps working. A relative
    SQLite file comes back under the project folder.
    """
    if url.startswith(POSTGRES_PREFIXES):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    return local_store_uri(url)


def open_storage(url: str, *, heartbeat_s: int,
                 on_stale: Callable[[optuna.Study, FrozenTrial], None]
                 ) -> optuna.storages.RDBStorage:
    """The study store at ``url``; a SQLite folder gets a .gitignore; ``on_stale`` gets dead
    trials."""
    path = sqlite_path(url)
    engine_kwargs: dict[str, Any] = {}
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        ignore = path.parent / ".gitignore"
        if path.parent != project_dir() and not ignore.exists():
            ignore.write_text("# Optuna studies (textrnn tune): local state, not for git\n*\n")
        engine_kwargs = {"connect_args": {"timeout": 120}}  # wait for another worker's write
    elif not url.startswith(POSTGRES_PREFIXES):
        raise ParamsError(
            f"tune.storage = {url!r}: use sqlite:///path/file.db or postgresql://user@host/db"
        )
    try:
        with contextlib.ExitStack() as stack:
            # workers (or queued experiments) starting together would race to create the tables
            if path is None:
                lock = stack.enter_context(_advisory_locks(url, "textrnn-optuna-schema"))
                stack.enter_context(lock())
            else:
                stack.enter_context(file_lock(lock_path(path)))
            stack.enter_context(warnings.catch_warnings())  # heartbeats: 'experimental'
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                engine_url(url), engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_s,
                grace_period=4 * heartbeat_s, heartbeat_stale_trial_callback=on_stale,
            )
    except Exception as exc:  # noqa: BLE001 (SQLAlchemy and drivers raise many kinds)
        raise UserError(
            f"tune.storage {url!r} is not reachable ({type(exc).__name__}: "
            f"{' '.join(str(exc).split())[:200]})"
        ) from None


@contextlib.contextmanager
def claim_lock(url: str,
               study_name: str) -> Iterator[Callable[[], contextlib.AbstractContextManager]]:
    """Yield a factory of a lock that serialises trial claims of one study across processes."""
    path = sqlite_path(url)
    if path is not None:
        yield functools.partial(file_lock, lock_path(path))
        return
    with _advisory_locks(url, study_name) as advisory_lock:
        yield advisory_lock


@contextlib.contextmanager
def _advisory_locks(url: str,
                    name: str) -> Iterator[Callable[[], contextlib.AbstractContextManager]]:
    """A PostgreSQL session advisory lock keyed by ``name``, on one connection held open."""
    import sqlalchemy

    key = zlib.crc32(name.encode()) & 0x7FFFFFFF
    engine = sqlalchemy.create_engine(engine_url(url), poolclass=sqlalchemy.pool.NullPool)
    try:
        with engine.connect() as conn:

            @contextlib.contextmanager
            def advisory_lock() -> Iterator[None]:
                conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": key})
                try:
                    yield
                finally:
                    conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": key})
                    conn.commit()

            yield advisory_lock
    finally:
        engine.dispose()
