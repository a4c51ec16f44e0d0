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
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from textrnn.errors import ParamsError, UserError
from textrnn.io import file_lock
from textrnn.paths import POSTGRES_PREFIXES, lock_file, project_dir, sqlite_file, store_url


def open_storage(url: str, *, heartbeat_s: int,
                 on_stale: Callable[[optuna.Study, FrozenTrial], None]
                 ) -> optuna.storages.RDBStorage:
    """The study store at ``url``; a SQLite folder gets a .gitignore; ``on_stale`` gets dead
    trials."""
    path = sqlite_file(url)
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
                stack.enter_context(file_lock(lock_file(path)))
            stack.enter_context(warnings.catch_warnings())  # heartbeats: 'experimental'
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                store_url(url), engine_kwargs=engine_kwargs, heartbeat_interval=heartbeat_s,
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
    path = sqlite_file(url)
    if path is not None:
        yield functools.partial(file_lock, lock_file(path))
        return
    with _advisory_locks(url, study_name) as advisory_lock:
        yield advisory_lock


@contextlib.contextmanager
def _advisory_locks(url: str,
                    name: str) -> Iterator[Callable[[], contextlib.AbstractContextManager]]:
    """A PostgreSQL session advisory lock keyed by ``name``, on one connection held open."""
    import sqlalchemy

    key = zlib.crc32(name.encode()) & 0x7FFFFFFF
    engine = sqlalchemy.create_engine(store_url(url), poolclass=sqlalchemy.pool.NullPool)
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
