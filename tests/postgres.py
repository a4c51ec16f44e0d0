"""A throw-away PostgreSQL server for tests: ``initdb`` + ``pg_ctl`` in a temporary folder, on a
free loopback port, trust authentication on 127.0.0.1 only, stopped at the end of the module.

Use it with ``from postgres import postgres_cluster  # noqa: F401`` in a test module; the fixture
yields ``new_database(name) -> URL``. PostgreSQL refuses to run as root, so under root the cluster
runs as the ``postgres`` system user (the Debian package creates it). Skipped, with the reason,
only when the server binaries are not installed outside CI (.ci/run installs them).
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
from pathlib import Path

import pytest


def bin_dir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_cluster(tmp_path_factory):
    binaries = bin_dir()
    if binaries is None:
        message = "PostgreSQL server binaries (initdb, pg_ctl) are not installed: " \
                  "apt-get install postgresql"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    base = tmp_path_factory.mktemp("pg")
    data, sockets = base / "data", base / "sock"
    sockets.mkdir()
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses root: run the server as the postgres system user
        as_user = ["runuser", "-u", "postgres", "--"]
        shutil.chown(base, "postgres")
        shutil.chown(sockets, "postgres")
        base.chmod(0o755)
        for parent in base.parents:  # the postgres user must be able to reach the folder
            if parent == Path("/"):
                break
            parent.chmod(parent.stat().st_mode | 0o005)

    def run(*args: str) -> None:
        proc = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            pytest.fail(f"{' '.join(args)} failed: {proc.stdout[-2000:]} {proc.stderr[-2000:]}")

    port = free_port()
    run(str(binaries / "initdb"), "-D", str(data), "-U", "tester", "-A", "trust", "--no-sync")
    run(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(base / "server.log"), "-w", "-o",
        f"-p {port} -k {sockets} -c listen_addresses=127.0.0.1 -c fsync=off", "start")

    def new_database(name: str) -> str:
        run(str(binaries / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "tester", name)
        return f"postgresql://tester@127.0.0.1:{port}/{name}"

    try:
        yield new_database
    finally:
        subprocess.run([*as_user, str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=120)
