"""A throw-away repository whose sentiment pipeline runs in about a minute, for the end-to-end
tests of issue 8 (browser comparison, team setup): the real stages, two cheap models.

- models ``dummy`` and ``tfidf_logreg``, tuning off, 200 bootstrap samples, an ensemble with no
  members; dvc.yaml follows the params, unedited.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from conftest import ROOT, copy_repo, run_cmd

TINY_MODELS = ["dummy", "tfidf_logreg"]
TARGET = "evaluate_sentiment"


def tiny_override(tracking_uri: str) -> dict:
    return {
        "tracking": {"uri": tracking_uri, "experiment": "textrnn"},
        "train": {"sentiment": {"models": TINY_MODELS, "ensemble": {"members": []}}},
        "tune": {"sentiment": {"models": {name: {"enabled": False} for name in TINY_MODELS}}},
        "evaluate": {"sentiment": {"bootstrap_samples": 200}},
        "embeddings": {"corpus": "none"},   # neither model reads word vectors
        "pretrain": {"corpus": "none"},     # nor the language model
    }


def make_repo(dest: Path, tracking_uri: str) -> Path:
    """A committed copy of the repository with the tiny override (nothing run yet)."""
    repo = copy_repo(dest, params_override=tiny_override(tracking_uri))
    # what git ignores in a real clone (the MLflow store, DVC's cache) ...
    for name in (".gitignore", ".dvc/.gitignore"):
        if (ROOT / name).is_file():
            shutil.copy2(ROOT / name, repo / name)
    # ... and no trained model copied from the developer's workspace: DVC owns those paths
    for folder in [*repo.glob("models/*/*/model"), *repo.glob("models/*/*/train_state")]:
        shutil.rmtree(folder)
    commit(repo, "tiny sentiment pipeline")
    return repo


def commit(repo: Path, message: str) -> None:
    run_cmd(["git", "add", "-A"], repo)
    run_cmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", message,
             "--allow-empty"], repo)


def repro(repo: Path, env: dict, *args: str) -> str:
    return run_cmd(["dvc", "repro", *args, TARGET], repo, env=env, timeout=900).stdout


class MlflowServer:
    """``mlflow <command>`` (``ui`` or ``server``) on a free loopback port, for one test module."""

    def __init__(self, log: Path, *args: str, command: str = "server") -> None:
        import socket
        import sys

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        mlflow_bin = str(Path(sys.executable).with_name("mlflow"))
        self.args = [mlflow_bin, command, *args, "--host", "127.0.0.1", "--port", str(self.port),
                     "--workers", "1"]
        self.log = log

    def __enter__(self) -> MlflowServer:
        import subprocess
        import time

        import requests

        self._log = self.log.open("w")
        self.proc = subprocess.Popen(self.args, stdout=self._log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 240            # a new store runs its migrations first
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{' '.join(self.args)} exited {self.proc.returncode}:\n"
                                   f"{self.log.read_text()[-3000:]}")
            try:
                if requests.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.5)
        self.__exit__()
        raise RuntimeError(f"{' '.join(self.args)} did not answer within 240 s:\n"
                           f"{self.log.read_text()[-3000:]}")

    def __exit__(self, *exc: object) -> None:
        import os
        import signal
        import subprocess

        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)   # the server and its worker processes
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self._log.close()
