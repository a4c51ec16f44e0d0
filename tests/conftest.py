"""Shared fixtures: the repository root, the data mirror, and throw-away copies of the repository.

Also the test tiers: each folder under tests/ is one tier, and every test in it carries the pytest
marker of that name (``pytest -m unit`` runs tests/unit/), set here at collection.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
# The helper modules (fixtures, serving_fixtures, tiny_pipeline, tuning_worker, postgres, and this
# conftest) live in tests/ while the test modules live one folder down: make them importable by name
# from every tier folder (pytest's default "prepend" import mode only adds the test's own folder).
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

# tests/<folder>/ -> the marker every test in it gets (registered in pyproject.toml).
TIERS = ("unit", "data", "pipeline", "service", "team")
VENV_BIN = str(Path(sys.executable).parent)
# Stages run as `python -m stages.X` from dvc.yaml: the venv's python must come first on PATH.
os.environ["PATH"] = VENV_BIN + os.pathsep + os.environ.get("PATH", "")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# Never copied into a throw-away repository: a fresh clone has none of it.
SKIP_TOP = {".git", ".venv", ".tune", "data", "test-artifacts", ".cache"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark each test with its tier, the name of its folder under tests/ (``pytest -m unit``)."""
    for item in items:
        try:
            folder = Path(str(item.path)).resolve().relative_to(TESTS).parts[0]
        except ValueError:  # not under tests/ (a path given on the command line elsewhere)
            continue
        if folder in TIERS:
            item.add_marker(getattr(pytest.mark, folder))


@pytest.fixture(scope="session")
def mirror() -> Path:
    """The offline copy of the raw data named by $TEXTRNN_DATA_MIRROR (CI sets it)."""
    value = os.environ.get("TEXTRNN_DATA_MIRROR")
    if not value or not Path(value).is_dir():
        if os.environ.get("CI"):  # CI must never skip the real-data tests silently
            pytest.fail(f"CI: TEXTRNN_DATA_MIRROR={value!r} is not a folder")
        pytest.skip("TEXTRNN_DATA_MIRROR is not set to a folder: the real-data tests need it")
    return Path(value)


def run_cmd(args: list[str], cwd: Path, env: dict | None = None, timeout: float = 1200,
            check: bool = True) -> subprocess.CompletedProcess:
    """Run a command, and on an unexpected exit code fail with its output (not just the code)."""
    proc = subprocess.run(args, cwd=cwd, env={**os.environ, **(env or {})}, text=True,
                          capture_output=True, timeout=timeout)
    if check and proc.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {proc.returncode}\n{proc.stdout[-4000:]}\n"
                    f"{proc.stderr[-4000:]}")
    return proc


def copy_repo(dest: Path, params_override: dict | None = None) -> Path:
    """A throw-away copy of the repository with its own git and DVC state, for end-to-end runs.

    ``params_override`` is a nested dict merged into params.yaml (e.g. to make training tiny).
    """
    import yaml

    dest.mkdir(parents=True, exist_ok=True)
    # Exactly what a clone of the current work tree would hold: tracked files plus untracked ones
    # that git does not ignore (so no DVC outputs, models or caches).
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                            cwd=ROOT, capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        src = ROOT / name
        parts = Path(name).parts
        if not src.is_file() or parts[0] in SKIP_TOP or "__pycache__" in parts:
            continue
        (dest / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest / name)
    if params_override:
        params = yaml.safe_load((dest / "params.yaml").read_text())
        _merge(params, params_override)
        (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    run_cmd(["git", "init", "-q"], dest)
    run_cmd(["git", "add", "-A"], dest)
    run_cmd(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "copy"], dest)
    return dest


def _merge(base: dict, override: dict) -> None:
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            _merge(base[key], value)
        else:
            base[key] = value
