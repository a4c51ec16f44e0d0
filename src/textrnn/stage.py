"""The one way a stage (or CLI command) runs: user errors become one line on stderr and exit 2."""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable

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
