"""dvc.yaml lists every module a stage runs (else editing it would rerun nothing and `dvc repro`
would call stale results up to date), and src/textrnn has no import cycle.

Imports are read from the source (every ``import`` statement, also those inside functions: a
stage imports TensorFlow-heavy modules late, but still runs them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

SRC = ROOT / "src"


def module_file(name: str) -> Path | None:
    """The file of module ``name`` (``stages.x`` or ``textrnn.x.y``); None if not ours."""
    parts = name.split(".")
    base = (ROOT if parts[0] == "stages" else SRC) / Path(*parts)
    if parts[0] not in ("stages", "textrnn"):
        return None
    if (base / "__init__.py").is_file():
        return base / "__init__.py"
    return base.with_suffix(".py") if base.with_suffix(".py").is_file() else None


def imported(path: Path, name: str) -> set[str]:
    """Every module ``path`` (module ``name``) imports, with the packages they sit in."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            found |= {base, *(f"{base}.{alias.name}" for alias in node.names)}
    with_packages = set()
    for module in found:
        parts = module.split(".")
        with_packages |= {".".join(parts[:i]) for i in range(1, len(parts) + 1)}
    return {m for m in with_packages if module_file(m) is not None}


def closure(start: str) -> set[Path]:
    seen: dict[str, Path] = {}
    todo = [start, start.partition(".")[0]]           # its package's __init__ runs first
    while todo:
        name = todo.pop()
        path = module_file(name)
        if path is None or name in seen:
            continue
        seen[name] = path
        todo += imported(path, name)
    return set(seen.values())


def stages() -> dict[str, dict]:
    """Each stage of dvc.yaml (a foreach stage once, its ``do`` body) by name."""
    pipeline = yaml.safe_load((ROOT / "dvc.yaml").read_text(encoding="utf-8"))["stages"]
    return {name: stage.get("do", stage) for name, stage in pipeline.items()}


@pytest.mark.parametrize("name", sorted(stages()))
def test_a_stage_lists_every_module_it_runs(name):
    stage = stages()[name]
    module = stage["cmd"].split()[2]                       # python -m stages.<module> ...
    deps = [Path(next(iter(d)) if isinstance(d, dict) else d) for d in stage["deps"]]
    missing = sorted(str(path.relative_to(ROOT)) for path in closure(module)
                     if not any(path.relative_to(ROOT).is_relative_to(dep) for dep in deps))
    assert not missing, f"dvc.yaml stage {name} runs {missing} without listing them as deps"


def test_the_check_would_catch_an_unlisted_module():
    """The closure reaches what a stage imports late (inside main), through other modules."""
    files = {str(p.relative_to(ROOT)) for p in closure("stages.train_sentiment")}
    assert {"stages/train_sentiment.py", "src/textrnn/seeding.py", "src/textrnn/config.py",
            "src/textrnn/sentiment/evaluation.py", "src/textrnn/layers.py"} <= files
    assert not any(f.startswith("src/textrnn/serving") for f in files)   # no web framework


def test_no_import_cycle_in_the_library():
    modules = {}
    for path in (SRC / "textrnn").rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        modules[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    # a module's own parent packages run first anyway: not an edge of a cycle
    graph = {name: {m for m in imported(path, name)
                    if m in modules and m != name and not name.startswith(m + ".")}
             for name, path in modules.items()}
    visiting: list[str] = []
    done: set[str] = set()

    def visit(name: str) -> None:
        if name in visiting:
            cycle = visiting[visiting.index(name):] + [name]
            pytest.fail("import cycle: " + " -> ".join(cycle))
        if name in done:
            return
        visiting.append(name)
        for target in sorted(graph[name]):
            visit(target)
        visiting.pop()
        done.add(name)

    for name in sorted(graph):
        visit(name)


@pytest.mark.parametrize("name", ["tune_sentiment", "train_sentiment", "tune_charlm",
                                  "train_charlm"])
def test_a_stage_that_builds_models_lists_every_kinds_builder(name):
    """Kinds name their builder as a string ("module:attr"), which imports cannot show."""
    from textrnn import catalog

    task = name.split("_")[1]
    stage = stages()[name]
    deps = [Path(next(iter(d)) if isinstance(d, dict) else d) for d in stage["deps"]]
    modules = {kind.builder.split(":")[0] for kind in catalog.kinds(task).values()}
    files = set().union(*(closure(module) for module in modules))
    missing = sorted(str(path.relative_to(ROOT)) for path in files
                     if not any(path.relative_to(ROOT).is_relative_to(dep) for dep in deps))
    assert not missing, f"dvc.yaml stage {name} builds models with {missing} unlisted"
