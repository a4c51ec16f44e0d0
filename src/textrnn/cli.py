"""The `textrnn` command: everything a person runs by hand (serve, generate, report, ui,
tune-worker). One subcommand per job; add one with an ``add_<name>_command`` function registered
in :func:`build_parser` (its handler takes the parsed arguments). The DVC stages keep their own
``python -m stages.<stage>`` entry points, which dvc.yaml calls."""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import shutil
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from textrnn.errors import UserError
from textrnn.stage import TASKS, quiet_tensorflow, run

API_KEY_ENV = "TEXTRNN_API_KEY"
log = logging.getLogger("textrnn.serve")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="textrnn", description=__doc__.split("\n")[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_serve_command(commands)
    add_generate_command(commands)
    add_report_command(commands)
    add_ui_command(commands)
    add_tune_worker_command(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    quiet_tensorflow()
    run(lambda: args.handler(args))


# ----------------------------------------------------------------------------- serve


def add_serve_command(commands: argparse._SubParsersAction) -> None:
    from textrnn.serving.settings import Limits, ServingSettings

    defaults = ServingSettings()
    serve = commands.add_parser(
        "serve", help="serve the champion models over HTTP (API, docs and a web page)",
        description="Serve the champion sentiment model (and the champion charlm model when one "
        f"exists) over HTTP. With ${API_KEY_ENV} set, /v1/* requires it in the X-API-Key header.",
    )
    serve.add_argument("--host", default=defaults.host,
                       help="address to listen on (default: %(default)s)")
    serve.add_argument("--port", type=int, default=defaults.port,
                       help="port to listen on (default: %(default)s)")
    serve.add_argument("--models-dir", type=Path, default=defaults.models_dir,
                       help="folder holding <task>/champion.json and the models "
                       "(default: %(default)s)")
    serve.add_argument("--registry", metavar="TRACKING_URI", default=None,
                       help="load the champions from the MLflow Model Registry at this tracking "
                       "URI (e.g. sqlite:///mlflow.db) instead of --models-dir")
    serve.add_argument("--allow-remote", action="store_true",
                       help=f"listen on a non-loopback address without an API key (${API_KEY_ENV})")
    serve.add_argument("--max-batch-texts", type=int, default=defaults.max_batch_texts,
                       help="most texts of concurrent requests run through the model as one batch "
                       "(default: %(default)s)")
    serve.add_argument("--no-access-log", dest="access_log", action="store_false",
                       help="do not log one line per request")
    limits = serve.add_argument_group("request limits (a request outside them is answered 400/413)")
    for item in dataclasses.fields(Limits):
        limits.add_argument(f"--{item.name.replace('_', '-')}", type=type(item.default),
                            default=item.default, metavar=item.type.upper(),
                            help=f"{item.metadata['help']} (default: %(default)s)")
    serve.set_defaults(handler=serve_command)


def serve_command(args: argparse.Namespace) -> None:
    from textrnn.serving.settings import Limits, ServingSettings

    settings = ServingSettings(
        host=args.host, port=args.port, models_dir=args.models_dir,
        api_key=os.environ.get(API_KEY_ENV) or None, allow_remote=args.allow_remote,
        max_batch_texts=args.max_batch_texts, access_log=args.access_log,
        limits=Limits(**{item.name: getattr(args, item.name)
                         for item in dataclasses.fields(Limits)}),
    )
    settings.check_exposure()           # before the slow part: loading TensorFlow and the models
    import uvicorn

    from textrnn.serving import create_app, load_models

    if args.registry:
        from textrnn.serving.from_registry import load_models as load_registered

        sentiment, generator = load_registered(args.registry)
    else:
        sentiment, generator = load_models(settings.models_dir)
    app = create_app(settings, sentiment=sentiment, generator=generator)
    log.info("loaded sentiment model %r%s", sentiment.info.name,
             f" and charlm model {generator.info.name!r}" if generator else " (no charlm model)")
    uvicorn.run(app, host=settings.host, port=settings.port, access_log=settings.access_log,
                log_level="info")


# ----------------------------------------------------------------------------- generate


def add_generate_command(commands: argparse._SubParsersAction) -> None:
    from typing import get_args

    from textrnn.config import CharlmStrategy

    generate = commands.add_parser(
        "generate", help="continue a prompt with a trained character-level language model",
        description="Print PROMPT followed by LENGTH generated characters "
                    "(textrnn.charlm.decoding).")
    generate.add_argument("prompt", help="text to continue")
    generate.add_argument("--model", default=None,
                          help="charlm model name (default: the champion in MODELS_DIR/charlm)")
    generate.add_argument("--models-dir", type=Path, default=Path("models"),
                          help="folder holding charlm/<name>/model (default: %(default)s)")
    generate.add_argument("--strategy", choices=get_args(CharlmStrategy), default="sample",
                          help="decoder (default: %(default)s)")
    generate.add_argument("--length", type=int, default=300,
                          help="characters to generate (default: %(default)s)")
    generate.add_argument("--temperature", type=float, default=1.0,
                          help="of sample and stochastic_beam (default: %(default)s)")
    generate.add_argument("--top-k", type=int, default=0,
                          help="sample among the k most likely characters; 0 = all (default: 0)")
    generate.add_argument("--top-p", type=float, default=1.0,
                          help="nucleus sampling: sample among the smallest set of most likely "
                               "characters whose probability reaches P, after --top-k; "
                               "0 < P <= 1, 1 = off (default: 1.0)")
    generate.add_argument("--beam-width", type=int, default=5,
                          help="beams of beam and stochastic_beam (default: %(default)s)")
    generate.add_argument("--seed", type=int, default=None,
                          help="makes sample and stochastic_beam reproducible (default: random)")
    generate.set_defaults(handler=generate_command)


def generate_command(args: argparse.Namespace) -> None:
    from textrnn.charlm.decoding import generate_command as generate

    generate(args)


# ----------------------------------------------------------------------------- report


def add_report_command(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report", help="compare the workspace's metrics, plots and champions with a revision",
        description="Write reports/compare.md and the plot pages: the workspace beside a git "
                    "revision (what `make report` runs).")
    report.add_argument("--baseline", default=None,
                        help="git revision to compare with (default: HEAD, or HEAD~1 when the "
                        "workspace equals HEAD)")
    report.add_argument("--out", type=Path, default=Path("reports"), help="default: %(default)s")
    report.set_defaults(handler=report_command)


def report_command(args: argparse.Namespace) -> None:
    from textrnn.compare import make_report

    path = make_report(Path("."), args.out, args.baseline)
    print(f"wrote {path}, {path.parent / 'plots/index.html'}, "
          f"{path.parent / 'plots_diff/index.html'}")


# ----------------------------------------------------------------------------- ui


def add_ui_command(commands: argparse._SubParsersAction) -> None:
    ui = commands.add_parser(
        "ui", help="the MLflow UI over params.yaml's tracking store (loopback only)",
        description="Run `mlflow ui` over tracking.uri of params.yaml on 127.0.0.1 (what "
                    "`make ui` runs); with a tracking server, say where its own UI is.")
    ui.add_argument("--port", type=int, default=5000, help="default: %(default)s")
    ui.add_argument("--params", default="params.yaml", help="default: %(default)s")
    ui.set_defaults(handler=ui_run)


def ui_run(args: argparse.Namespace) -> None:
    from textrnn.config import load_params
    from textrnn.tracking import runs_page, ui_command

    found = shutil.which("mlflow", path=os.path.dirname(sys.executable)) or "mlflow"
    command = ui_command(args.params, port=args.port, mlflow_bin=found)
    if command is None:
        uri = load_params("tracking", path=args.params).tracking.uri
        print(f"tracking.uri is the tracking server {uri}: open it in a browser "
              "(it serves its own UI)")
        return
    base = f"http://127.0.0.1:{args.port}"
    print(f"MLflow UI over {command[3]} on {base} (Ctrl-C stops it); the training runs: "
          f"{base}{runs_page(args.params)}", flush=True)
    os.execv(command[0], command)


# ----------------------------------------------------------------------------- tune-worker


def add_tune_worker_command(commands: argparse._SubParsersAction) -> None:
    worker = commands.add_parser(
        "tune-worker", help="join a model's tuning study from another process or machine",
        description="Run trials of TASK's model MODEL in the study at params.yaml's "
                    "tune.storage (a PostgreSQL URL every machine reaches) until its budget is "
                    "used; writes no outputs (the DVC stage on the first machine does). Run it "
                    "in a checkout of the repository.")
    worker.add_argument("task", choices=TASKS)
    worker.add_argument("model", help="a model of train.TASK.models")
    worker.set_defaults(handler=tune_worker_command)


def tune_worker_command(args: argparse.Namespace) -> None:
    if not Path(f"stages/tune_{args.task}.py").is_file():
        raise UserError("run `textrnn tune-worker` in the repository's root folder "
                        f"(stages/tune_{args.task}.py is not here)")
    command = [sys.executable, "-m", f"stages.tune_{args.task}", args.model, "--worker"]
    code = subprocess.call(command)   # the stage's own checks, output and exit code
    if code:
        raise SystemExit(code)
