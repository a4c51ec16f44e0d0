"""The one way a stage (or CLI command) runs: user errors become one line on stderr and exit 2."""

from __future__ import annotations

import contextlib
import importlib.abc
import importlib.util
import logging
import os
import sys
from collections.abc import Callable, Iterator

from textrnn.errors import UserError

EXIT_USER_ERROR = 2


def run(main: Callable[[], object]) -> None:
    """Call ``main``; turn a :class:`UserError` into ``error: <message>`` and exit code 2."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    try:
        main()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(EXIT_USER_ERROR)
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        sys.exit(130)


TF_LOG_ENV = "TEXTRNN_TF_LOG"   # set to 1 to see TensorFlow's start-up lines


@contextlib.contextmanager
def _stderr_silenced() -> Iterator[None]:
    """File descriptor 2 to /dev/null: TensorFlow's C++ start-up lines bypass Python's stderr."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "w") as null:
            os.dup2(null.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


class _QuietTensorFlowImport(importlib.abc.MetaPathFinder):
    """Runs the first ``import tensorflow`` with stderr silenced, whoever imports it and when."""

    def find_spec(self, fullname, path, target=None):  # noqa: ANN001, ANN201 (importlib's API)
        if fullname != "tensorflow":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is not None and spec.loader is not None:
            real_exec = spec.loader.exec_module

            def exec_module(module):  # noqa: ANN001, ANN202
                with _stderr_silenced():
                    real_exec(module)

            spec.loader.exec_module = exec_module
        return spec


def quiet_tensorflow() -> None:
    """Hide TensorFlow's start-up lines (oneDNN, CPU features: INFO, not problems) unless
    ``TEXTRNN_TF_LOG=1``. Errors still surface: a failed import raises after stderr is back."""
    if os.environ.get(TF_LOG_ENV) == "1" or "tensorflow" in sys.modules:
        return
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")   # later C++ INFO lines (not warnings)
    if not any(isinstance(f, _QuietTensorFlowImport) for f in sys.meta_path):
        sys.meta_path.insert(0, _QuietTensorFlowImport())


# the tasks (the folders under data/, models/, plots/): every module takes them from here
TASKS = ("sentiment", "charlm")


def task_from_argv(argv: list[str], usage: str) -> str:
    """The one positional argument of a per-task stage: ``sentiment`` or ``charlm``."""
    if len(argv) != 2 or argv[1] not in TASKS:
        got = " ".join(argv[1:]) or "nothing"
        raise UserError(f"usage: {usage} {{{'|'.join(TASKS)}}} (got {got})")
    return argv[1]


def model_from_argv(argv: list[str], stage: str, task: str, known: list[str]) -> str:
    """The one positional argument of a per-model stage: a model of ``train.<task>.models``."""
    if len(argv) != 2 or argv[1] not in known:
        got = " ".join(argv[1:]) or "nothing"
        raise UserError(f"usage: python -m stages.{stage} {{{'|'.join(known)}}} "
                        f"(the models of train.{task}.models; got {got})")
    return argv[1]
