"""No module of textrnn reaches into another library's private names (``study._storage``).

Optuna (like any library) changes its private attributes between releases without notice: the
tuning guarantees (exact budget, no grid point twice, a dead worker's trial re-run with the same
params, deterministic resume) must rest on its public API. Every module under src/textrnn/ is
parsed, and each of these is a finding, reported as ``file:line: code``:

- ``x._name``, where ``x`` is not ``self``, ``cls`` or a name imported from textrnn;
- ``getattr(x, "_name")``, and setattr, hasattr, delattr (the way round the first rule);
- ``from lib._module import y``, ``from lib import _name``, ``import lib._module`` for a library
  other than textrnn.

A dunder (``__dict__``, ``__future__``) is public. ``self._x`` is a class's own state.
"""

from __future__ import annotations

import ast
import textwrap

from conftest import ROOT

SRC = ROOT / "src" / "textrnn"
PROJECT = "textrnn"

# Exceptions, each with its reason.
ALLOWED = {
    # The type of argparse's add_subparsers(), which has no public name; cli.py names it only in
    # annotations, which `from __future__ import annotations` leaves unevaluated.
    "argparse._SubParsersAction",
}
BY_NAME = {"getattr", "setattr", "hasattr", "delattr"}


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _project_names(tree: ast.Module) -> set[str]:
    """``self``, ``cls`` and the names ``tree`` imports from the project."""
    names = {"self", "cls"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {alias.asname or alias.name for alias in node.names
                      if alias.name.split(".")[0] == PROJECT}
        elif isinstance(node, ast.ImportFrom) and (
                node.level or (node.module or "").split(".")[0] == PROJECT):
            names |= {alias.asname or alias.name for alias in node.names}
    return names


def private_uses(source: str, filename: str) -> list[str]:
    """Each use of another library's private name in ``source``, as ``filename:line: code``."""
    tree = ast.parse(source, filename)
    ours = _project_names(tree)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            bad = _private(node.attr) and ast.unparse(node.value) not in ours
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            name = node.args[1] if node.func.id in BY_NAME and len(node.args) > 1 else None
            bad = (isinstance(name, ast.Constant) and isinstance(name.value, str)
                   and _private(name.value) and ast.unparse(node.args[0]) not in ours)
        elif isinstance(node, ast.ImportFrom) and not node.level:
            parts = (node.module or "").split(".")
            bad = parts[0] != PROJECT and any(
                _private(part) for part in [*parts, *(alias.name for alias in node.names)])
        elif isinstance(node, ast.Import):
            bad = any(alias.name.split(".")[0] != PROJECT
                      and any(_private(part) for part in alias.name.split("."))
                      for alias in node.names)
        else:
            continue
        if bad and (code := ast.unparse(node)) not in ALLOWED:
            found.append((node.lineno, node.col_offset, f"{filename}:{node.lineno}: {code}"))
    return [use for *_, use in sorted(found)]


def test_no_module_uses_a_private_name_of_optuna_or_any_other_library():
    modules = sorted(SRC.rglob("*.py"))
    assert len(modules) > 20  # the whole package, not an empty glob
    found = [use for path in modules
             for use in private_uses(path.read_text(), str(path.relative_to(ROOT)))]
    assert found == [], "private names of other libraries (use their public API):\n" + "\n".join(
        found)


def test_the_check_finds_each_kind_of_private_use_and_passes_the_rest():
    source = textwrap.dedent('''\
        import optuna
        import optuna._imports
        from optuna.samplers._grid import GridValueType
        from optuna.study import _optimize
        from textrnn.tuning import study as studies
        from textrnn.tuning.study import _params_of

        def params(study, sampler, grid_id):
            names = sampler._param_names
            values = sampler._all_grids[grid_id]
            if getattr(study, "_storage", None):
                return study._storage.get_all_trials(study._study_id)
            return studies._params_of, _params_of, optuna.__version__, study.__dict__

        class Sampler:
            def __init__(self):
                self._grid = []

            @classmethod
            def make(cls):
                return cls._default, getattr(cls, "_default")
    ''')
    assert private_uses(source, "planted.py") == [
        "planted.py:2: import optuna._imports",
        "planted.py:3: from optuna.samplers._grid import GridValueType",
        "planted.py:4: from optuna.study import _optimize",
        "planted.py:9: sampler._param_names",
        "planted.py:10: sampler._all_grids",
        "planted.py:11: getattr(study, '_storage', None)",
        "planted.py:12: study._storage",
        "planted.py:12: study._study_id",
    ]
