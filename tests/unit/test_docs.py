"""Docs that cannot rot quietly: the commands that README.md and docs/**/*.md show still work.

For every page (README.md and each Markdown file under docs/):

- every ``dvc exp run -S key=value`` names keys that params.yaml has (``+key`` / ``++key`` may add
  one), and the params it would give still pass the params schema (a typo in a new key fails);
- every ``make <target>`` names a target of the Makefile;
- every ``textrnn <subcommand> ...`` line of a code block parses with the real argument parser;

and ``mkdocs build --strict`` passes (broken links and anchors, missing API objects, a failing
``dvc dag``), and every module of src/textrnn has a place in the API reference. Each failure names
the file, the line and the problem. How the site is written: docs/writing-docs.md.
"""

from __future__ import annotations

import contextlib
import copy
import importlib.util
import io
import itertools
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from conftest import ROOT

DOCS = ROOT / "docs"
PAGES = [ROOT / "README.md", *sorted(DOCS.rglob("*.md"))]
PAGE_IDS = [page.relative_to(ROOT).as_posix() for page in PAGES]


# --------------------------------------------------------------------------- reading Markdown


@dataclass(frozen=True)
class Snippet:
    """One command-like piece of a page: a logical line of a code block (backslash continuations
    joined) or one inline code span."""

    page: Path
    line: int       # 1-based, where the snippet starts
    text: str
    in_block: bool

    def where(self) -> str:
        page = self.page.relative_to(ROOT) if self.page.is_relative_to(ROOT) else self.page
        return f"{page.as_posix()}:{self.line}"


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")
_INLINE = re.compile(r"(?<!`)(`+)(?!`)(.+?)(?<!`)\1(?!`)", re.DOTALL)


def snippets(page: Path) -> Iterator[Snippet]:
    """The code of a page: fenced blocks line by line, inline code spans one by one."""
    lines = page.read_text(encoding="utf-8").splitlines()
    prose: list[str] = []           # the page with code blocks blanked (line numbers kept)
    fence: str | None = None
    pending: list[str] = []         # a code line continued with a trailing backslash
    pending_start = 0
    for number, line in enumerate(lines, start=1):
        match = _FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
            prose.append("")
            continue
        if fence is not None:
            prose.append("")
            if match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                    and not line.strip()[len(match.group(1)):]:
                fence = None
                if pending:
                    yield Snippet(page, pending_start, " ".join(pending), True)
                    pending = []
                continue
            if not pending:
                pending_start = number
            stripped = line.strip()
            if stripped.endswith("\\"):
                pending.append(stripped[:-1].strip())
                continue
            pending.append(stripped)
            yield Snippet(page, pending_start, " ".join(pending), True)
            pending = []
            continue
        prose.append(line)
    text = "\n".join(prose)
    for match in _INLINE.finditer(text):
        code = match.group(2)
        if "\n\n" in code:          # a stray backtick, not a span across paragraphs
            continue
        line = text.count("\n", 0, match.start()) + 1
        yield Snippet(page, line, " ".join(code.split()), False)


def _shell_words(command: str) -> list[str] | None:
    """The words of a shell command up to its first operator (``&&``, ``|``, ``;``, ``>`` ...),
    comments dropped; None when it does not split (unbalanced quotes: prose, not a command)."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    words: list[str] = []
    try:
        for word in lexer:
            if word and set(word) <= set("();<>|&"):
                break
            words.append(word)
    except ValueError:
        return None
    return words


def _commands(text: str) -> Iterator[list[str]]:
    """Every simple command of a shell line (split at ``&&``, ``||``, ``;`` and ``|``), with a
    ``$ `` prompt and leading ``VAR=value`` assignments removed."""
    text = re.sub(r"^\s*\$\s+", "", text)
    lexer = shlex.shlex(text, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    lexer.commenters = "#"
    try:
        words = list(lexer)
    except ValueError:
        return
    command: list[str] = []
    for word in [*words, ";"]:
        if word and set(word) <= set("();<>|&"):
            while command and re.match(r"^[A-Za-z_]\w*=", command[0]):
                command.pop(0)
            if command:
                yield command
            command = []
        else:
            command.append(word)


# --------------------------------------------------------------------------- dvc exp run -S


PARAMS = yaml.safe_load((ROOT / "params.yaml").read_text(encoding="utf-8"))
_SET_PARAM = ("-S", "--set-param")


def _set_params(words: list[str]) -> list[str]:
    """The ``-S`` / ``--set-param`` values of ``dvc exp run ...`` words."""
    values: list[str] = []
    for i, word in enumerate(words):
        if word in _SET_PARAM and i + 1 < len(words):
            values.append(words[i + 1])
        elif word.startswith("--set-param="):
            values.append(word.split("=", 1)[1])
    return values


def _lookup(params: dict, path: list[str]) -> tuple[bool, object]:
    node: object = params
    for part in path:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
            node = node[int(part)]
        else:
            return False, None
    return True, node


def _value(raw: str) -> object:
    try:
        return yaml.safe_load(raw) if raw else None
    except yaml.YAMLError:
        return raw


def check_overrides(overrides: list[str], params: dict) -> tuple[list[str], dict]:
    """Problems of a list of ``-S`` overrides (Hydra's grammar, as dvc applies them, in order),
    and the params they give.

    ``key=value`` must name an existing key. ``+key=value`` / ``++key=value`` may add one: DVC
    then creates any missing levels, so the deepest level that exists must be a mapping; what is
    added is checked by the params schema afterwards (:func:`schema_problem`).
    """
    params = copy.deepcopy(params)
    problems: list[str] = []
    for override in overrides:
        key, sep, raw = override.partition("=")
        if key.startswith("~"):                                   # ~key deletes it
            key, sep = key[1:], "="
        if not sep:
            problems.append(f"-S {override!r} is not key=value")
            continue
        adds = len(key) - len(key.lstrip("+"))
        key = key.lstrip("+")
        if ":" in key:                                            # params.yaml:key=value
            file, _, key = key.rpartition(":")
            if file != "params.yaml":
                continue  # another params file: not checked here
        path = key.split(".")
        found, _ = _lookup(params, path)
        if adds == 0 and not found:
            deepest = next((".".join(path[:n]) for n in range(len(path) - 1, 0, -1)
                            if _lookup(params, path[:n])[0]), None)
            problems.append(f"-S {override!r}: {key} is not in params.yaml"
                            + (f" (its deepest existing parent is {deepest})" if deepest else "")
                            + "; write ++" + key + "=... to add it")
            continue
        if adds > 2:
            problems.append(f"-S {override!r}: at most two + (++key adds or replaces)")
            continue
        if not found:
            existing = max(n for n in range(len(path)) if _lookup(params, path[:n])[0])
            _, parent = _lookup(params, path[:existing])
            if not isinstance(parent, dict):
                problems.append(f"-S {override!r}: {'.'.join(path[:existing]) or 'params.yaml'} "
                                f"is not a mapping, so {key} cannot be added under it")
                continue
        if override.startswith("~"):
            parent = _lookup(params, path[:-1])[1]
            if isinstance(parent, dict):
                parent.pop(path[-1], None)
            continue
        node = params
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else node[int(part)]
        if isinstance(node, dict):
            node[path[-1]] = _value(raw)
        else:
            node[int(path[-1])] = _value(raw)
    return problems, params


def schema_problem(params: dict, tmp_path: Path) -> str | None:
    """What the pipeline's own checks say about ``params`` (None: valid): the schema of every
    section, then every model of each task resolved from its kind's defaults and its variant."""
    from textrnn.catalog import resolve_model
    from textrnn.config import load_params
    from textrnn.errors import UserError
    from textrnn.stage import TASKS

    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(params, sort_keys=False), encoding="utf-8")
    try:
        load_params(path=path)
        for task in TASKS:
            train = params["train"][task]
            tune = params.get("tune", {}).get(task)
            names = dict.fromkeys([*(train.get("models") or []), *(train.get("variants") or {})])
            for name in names:
                resolve_model(task, name, train, tune)
    except UserError as exc:
        return str(exc).replace(str(path), "params.yaml")
    return None


def _is_pattern(key: str) -> bool:
    return bool(re.search(r"<[^>]*>|\$", key)) or key.lstrip("+~").lower() in {"key", "key.path"}


def dvc_exp_runs(page: Path) -> Iterator[tuple[Snippet, list[str]]]:
    for snippet in snippets(page):
        for words in _commands(snippet.text):
            if words[:3] == ["dvc", "exp", "run"]:
                yield snippet, words


def dvc_exp_run_problems(page: Path, tmp_path: Path) -> list[str]:
    problems = []
    for snippet, words in dvc_exp_runs(page):
        overrides = _set_params(words)
        # a key spelled with a placeholder (train.<task>.models), a shell variable or the word
        # `key` itself (`dvc exp run -S key=value` in prose) is a pattern, not a command: skipped
        if not overrides or any(_is_pattern(o.partition("=")[0]) for o in overrides):
            continue
        # `dvc exp run --queue -S key=a,b` queues one experiment per value (a sweep): each is
        # checked on its own
        choices = [_sweep(o) if "--queue" in words else [o] for o in overrides]
        for combination in itertools.product(*choices):
            found, params = check_overrides(list(combination), PARAMS)
            if not found:
                problem = schema_problem(params, tmp_path)
                found = [f"params.yaml would fail its checks: {problem}"] if problem else []
            problems += [f"{snippet.where()}: `{shlex.join(words)}`: {p}" for p in found]
    return problems


def _sweep(override: str) -> list[str]:
    """``key=a,b`` -> ``[key=a, key=b]`` (a sweep, in Hydra's grammar); a list or mapping value
    (``[a,b]``, ``{a: 1, b: 2}``) stays one override."""
    key, sep, raw = override.partition("=")
    if not sep or raw.lstrip().startswith(("[", "{")) or "," not in raw:
        return [override]
    return [f"{key}={choice}" for choice in raw.split(",")]


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_dvc_exp_run_sets_only_keys_params_yaml_has(page, tmp_path):
    problems = dvc_exp_run_problems(page, tmp_path)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- make <target>


def makefile_targets() -> set[str]:
    targets: set[str] = set()
    for line in (ROOT / "Makefile").read_text(encoding="utf-8").splitlines():
        match = re.match(r"^([^\s#=:][^=:]*?)\s*::?(?!=)", line)
        if match:
            targets.update(t for t in match.group(1).split()
                           if "$" not in t and not t.startswith("."))   # not $(STAMP), .PHONY
    return targets


_MAKE_OPTION_WITH_VALUE = {"-C", "-f", "-I", "-o", "-W", "--directory", "--file", "--makefile"}


def make_targets(words: list[str]) -> list[str]:
    """The targets of one ``make ...`` command (options and VAR=value dropped)."""
    targets, skip = [], False
    for word in words[1:]:
        if skip:
            skip = False
        elif word in _MAKE_OPTION_WITH_VALUE:
            skip = True
        elif not word.startswith("-") and "=" not in word:
            targets.append(word)
    return targets


def make_problems(page: Path) -> list[str]:
    known = makefile_targets()
    problems = []
    for snippet in snippets(page):
        for words in _commands(snippet.text):
            if words[0] != "make":
                continue
            for target in make_targets(words):
                if target not in known and not re.search(r"<[^>]*>|\$", target):
                    problems.append(f"{snippet.where()}: `make {target}`: the Makefile has no "
                                    f"target {target!r} (it has: {', '.join(sorted(known))})")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_make_targets_exist(page):
    problems = make_problems(page)
    assert not problems, "\n".join(problems)


# --------------------------------------------------------------------------- textrnn ...


_TEXTRNN = re.compile(
    r"^(?:\.venv/bin/textrnn|textrnn|(?:\.venv/bin/)?python3? -m textrnn)\s+(.*)$")
# A line holding a placeholder (<repository>, <model>) or a shell expansion ($VAR, $(...)) cannot
# be parsed as the reader would run it: such lines are skipped, not checked.
_PLACEHOLDER = re.compile(r"<[^<>\s]+>|\$\{?[A-Za-z_(]")


def textrnn_lines(page: Path) -> Iterator[tuple[Snippet, str]]:
    """``textrnn <subcommand> ...`` lines of the page's code blocks (after an optional ``$ ``):
    the text after ``textrnn``, up to a shell operator. Inline code is prose (`textrnn generate`
    names the command, it does not run it) and is not checked."""
    for snippet in snippets(page):
        if not snippet.in_block:
            continue
        text = re.sub(r"^\s*\$\s+", "", snippet.text)
        match = _TEXTRNN.match(text)
        if match is None or _PLACEHOLDER.search(text):
            continue
        words = _shell_words(match.group(1))
        if words:
            yield snippet, shlex.join(words)


def textrnn_problems(page: Path) -> list[str]:
    from textrnn.cli import build_parser

    problems = []
    for snippet, rest in textrnn_lines(page):
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                build_parser().parse_args(shlex.split(rest))
        except SystemExit as exc:
            if exc.code not in (0, None):            # 0: --help
                message = err.getvalue().strip().splitlines()
                problems.append(f"{snippet.where()}: `textrnn {rest}` does not parse: "
                                f"{message[-1] if message else f'exit {exc.code}'}")
    return problems


@pytest.mark.parametrize("page", PAGES, ids=PAGE_IDS)
def test_textrnn_commands_parse(page):
    problems = textrnn_problems(page)
    assert not problems, "\n".join(problems)


BROKEN_PAGE = """# A page that rotted

```bash
dvc exp run -S train.sentiment.defaults.network.dropout=0.3 \\
  -S 'train.sentiment.defaults.network.unitz=128'        # renamed key
dvc exp run -S '++train.sentiment.variants.lstm.unitz=128'   # a new key the schema refuses
dvc exp run -S '++train.sentiment.variants.lstm_256={kind: lstm, units: 256}' \\
  -S 'train.sentiment.variants.lstm_256.units=512' -S ++seed.x=1
dvc exp run --queue -S 'train.sentiment.defaults.network.units=64,many'  # one sweep value bad
make docs && make publish
$ textrnn generate "Dijo" --strategy nucleus
textrnn serve --port <port>
```

Run `make deploy`, `dvc exp run -S data.sentiment=imdb` or `dvc exp run -S key=value`.
"""


def test_the_checks_find_rotted_commands(tmp_path):
    """The checks above fail on what they are meant to catch, each naming file and line."""
    page = tmp_path / "page.md"
    page.write_text(BROKEN_PAGE, encoding="utf-8")
    exp = dvc_exp_run_problems(page, tmp_path)
    assert len(exp) == 4, exp
    assert exp[0].startswith(f"{page.as_posix()}:4: ") and "unitz is not in params.yaml" in exp[0]
    assert exp[1].startswith(f"{page.as_posix()}:6: ") and "would fail its checks" in exp[1]
    assert exp[2].startswith(f"{page.as_posix()}:7: ") and "seed is not a mapping" in exp[2]
    assert exp[3].startswith(f"{page.as_posix()}:9: ") and "units = 'many' is invalid" in exp[3]
    make = make_problems(page)
    assert len(make) == 2, make
    assert make[0].startswith(f"{page.as_posix()}:10: `make publish`")
    assert make[1].startswith(f"{page.as_posix()}:15: `make deploy`")
    cli = textrnn_problems(page)
    assert len(cli) == 1 and cli[0].startswith(f"{page.as_posix()}:11: "), cli
    assert "invalid choice: 'nucleus'" in cli[0]


# --------------------------------------------------------------------------- the site


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", DOCS / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_module_is_in_the_api_reference():
    documented = set()
    for page in (DOCS / "reference").glob("*.md"):
        documented.update(re.findall(r"^::: *([\w.]+)", page.read_text(encoding="utf-8"),
                                     re.MULTILINE))
    src = ROOT / "src"
    modules = {".".join(path.relative_to(src).with_suffix("").parts).removesuffix(".__init__")
               for path in (src / "textrnn").rglob("*.py") if path.stem != "__main__"}
    missing = sorted(modules - documented - {"textrnn"})
    assert not missing, (f"modules missing from the API reference (add a `::: module` line to the "
                         f"page of their area under docs/reference/): {', '.join(missing)}")


def test_dag_marker_outside_code_becomes_a_mermaid_block():
    hooks = _hooks()
    page = ("# Pipeline\n\n<!-- dvc-dag -->\n\n```markdown\n<!-- dvc-dag -->\n```\n"
            "- in a list:\n    <!-- dvc-dag -->\n")
    out = hooks.replace_dag_marker(page, lambda: "flowchart TD\n\tnode1-->node2")
    assert out.count("```mermaid") == 2, out
    assert "```markdown\n<!-- dvc-dag -->\n```" in out                 # shown, not drawn
    assert "    ```mermaid\n    flowchart TD\n    \tnode1-->node2\n    ```\n" in out
    assert hooks.replace_dag_marker("no marker\n", lambda: pytest.fail("drew")) == "no marker\n"


def test_docstring_roles_become_links_and_prose_stays_visible():
    hooks = _hooks()
    html = ('<h2 id="textrnn.catalog.resolve_models">x</h2><p>:func:<code>resolve_models</code>, '
            ":mod:<code>~textrnn.charlm.data</code>, :class:<code>Nowhere</code>, "
            'tune_<task>@<name>, <autoref identifier="--out reports">--baseline REV</autoref></p>'
            "<p>::</p>")
    out = hooks.unlink_non_identifiers(hooks.escape_unknown_tags(hooks.fix_literal_markers(html)))
    out = hooks.link_roles(out)
    assert '<autoref optional identifier="textrnn.catalog.resolve_models">' in out
    assert '<autoref optional identifier="textrnn.charlm.data"><code>data</code>' in out
    assert "<code>Nowhere</code>" in out and ":class:" not in out
    assert "tune_&lt;task&gt;@&lt;name&gt;" in out
    assert "[--baseline REV] [--out reports]" in out and "<p>::</p>" not in out


def test_strict_build(tmp_path):
    """The site builds with every warning an error (as `make docs` and CI build it), draws the
    DVC graph where a page asks for it and publishes the images under plots/."""
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--config-file",
         str(ROOT / "mkdocs.yml"), "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    log = [line for line in proc.stderr.splitlines() if "WARNING" in line or "ERROR" in line]
    assert proc.returncode == 0, "mkdocs build --strict failed:\n" + "\n".join(
        log or proc.stderr.splitlines()[-30:])
    hooks = _hooks()
    for page in DOCS.rglob("*.md"):
        text = page.read_text(encoding="utf-8")
        if hooks.replace_dag_marker(text, lambda: "drawn") != text:   # a marker outside code
            rel = page.relative_to(DOCS).with_suffix("")
            built = site / ("" if rel.name == "index" else rel) / "index.html"
            assert 'class="mermaid"' in built.read_text(encoding="utf-8"), built
    images = [p.relative_to(ROOT) for p in (ROOT / "plots").rglob("*.png")]
    missing = [str(p) for p in images if not (site / p).is_file()]
    assert not missing, f"images under plots/ not published: {missing}"
