"""MkDocs hooks of this site (registered in mkdocs.yml under ``hooks:``). Conventions for page
authors (also in docs/writing-docs.md):

- **The DVC graph.** A line holding only ``<!-- dvc-dag -->`` (outside a code block) becomes a
  mermaid diagram of ``dvc dag --mermaid``, run at the repository root at every build, so the
  drawing is never older than dvc.yaml. If dvc fails, the build fails and says why.
- **Images.** Every ``*.png`` under ``plots/`` (outside docs/) is published at the same path in the
  site, as if it lay in ``docs/plots/``. A page links it relative to itself, like any other file
  of docs/: from ``docs/pipeline.md`` write ``![ROC](plots/sentiment/evaluate/roc.png)``, from
  ``docs/reference/x.md`` write ``../plots/...``. ``mkdocs build --strict`` checks those links like
  every other one, so a renamed or deleted plot fails the build. Never create ``docs/plots/``.
- **Docstrings** (pages under ``docs/reference/`` only). The source's docstrings are plain prose
  with a little reStructuredText: ``:func:`name``` and ``:mod:`~textrnn.x``` become links to the
  object when the site renders it (else plain code), a lone ``::`` disappears, and prose such as
  ``tune_<task>@<name>`` or ``[--out DIR]`` is shown as written instead of being taken for HTML
  or for a Markdown link.
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import sys
from pathlib import Path

from mkdocs.config.defaults import MkDocsConfig
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File, Files
from mkdocs.structure.pages import Page

DAG_MARKER = "<!-- dvc-dag -->"
PLOTS_DIR = "plots"
IMAGE_SUFFIXES = (".png",)

_dag_cache: dict[str, str] = {}  # one `dvc dag` per build (cleared at each build's start)


def _root(config: MkDocsConfig) -> Path:
    """The repository root: the folder of mkdocs.yml."""
    return Path(config.config_file_path).resolve().parent


def on_pre_build(config: MkDocsConfig) -> None:
    _dag_cache.clear()  # `mkdocs serve` rebuilds: draw the graph of the dvc.yaml of now


# --- images under plots/ ------------------------------------------------------------------------


def on_files(files: Files, config: MkDocsConfig) -> Files:
    """Add every image under plots/ to the site at its own path (``plots/...``)."""
    root = _root(config)
    folder = root / PLOTS_DIR
    if not folder.is_dir():
        return files
    for path in sorted(folder.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        uri = path.relative_to(root).as_posix()
        if files.get_file_from_path(uri) is not None:
            raise PluginError(f"docs/{uri} shadows {uri}: images under {PLOTS_DIR}/ are published "
                              f"by docs/hooks.py; do not keep a copy under docs/")
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    return files


# --- the DVC graph ------------------------------------------------------------------------------


def _dvc() -> str:
    """The dvc of this environment (beside the running Python), else the first one on PATH."""
    here = Path(sys.executable).parent / "dvc"
    if here.is_file():
        return str(here)
    found = shutil.which("dvc")
    if found is None:
        raise PluginError(f"docs/hooks.py: a page holds {DAG_MARKER} but no `dvc` was found "
                          f"beside {sys.executable} nor on PATH (install the project: make setup)")
    return found


def dvc_dag_mermaid(root: Path) -> str:
    """The output of ``dvc dag --mermaid`` at ``root``; a failure is a PluginError saying why."""
    key = str(root)
    if key not in _dag_cache:
        command = [_dvc(), "dag", "--mermaid"]
        try:
            proc = subprocess.run(command, cwd=root, capture_output=True, text=True, timeout=300)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise PluginError(f"docs/hooks.py: `{' '.join(command)}` in {root} failed: "
                              f"{exc}") from exc
        graph = proc.stdout.strip()
        if proc.returncode != 0 or not graph:
            detail = (proc.stderr or proc.stdout).strip()[-2000:] or "no output"
            raise PluginError(f"docs/hooks.py: `{' '.join(command)}` in {root} exited "
                              f"{proc.returncode}, so the page's {DAG_MARKER} cannot be drawn:\n"
                              f"{detail}")
        _dag_cache[key] = graph
    return _dag_cache[key]


_FENCE = re.compile(r"^\s*(`{3,}|~{3,})")


def replace_dag_marker(markdown: str, draw) -> str:
    """Replace each line that is exactly the marker (outside fenced code) with a mermaid block;
    ``draw()`` gives the graph and is called only when a marker is found."""
    out: list[str] = []
    fence: str | None = None
    for line in markdown.splitlines(keepends=True):
        match = _FENCE.match(line)
        if match:
            mark = match.group(1)
            if fence is None:
                fence = mark
            elif mark[0] == fence[0] and len(mark) >= len(fence) and not line.strip()[len(mark):]:
                fence = None
        elif fence is None and line.strip() == DAG_MARKER:
            indent = line[: len(line) - len(line.lstrip())]
            block = ["```mermaid", *draw().splitlines(), "```"]
            out.extend(f"{indent}{row}\n" for row in block)
            continue
        out.append(line)
    return "".join(out)


def on_page_markdown(markdown: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if DAG_MARKER not in markdown:
        return markdown
    return replace_dag_marker(markdown, lambda: dvc_dag_mermaid(_root(config)))


# --- docstrings on the API reference pages ---------------------------------------------------

# :func:`name` renders as ":func:<code>name</code>" (double backticks render as code too)
_ROLE = re.compile(r":(?:py:)?(?:mod|func|class|meth|attr|data|exc|obj|const):"
                   r"<code>(?P<tilde>~?)(?P<target>[A-Za-z_][\w.]*)(?P<call>\(\))?</code>")
_OBJECT_ID = re.compile(r'\bid="(textrnn(?:\.[A-Za-z_]\w*)*)"')
_AUTOREF = re.compile(r"<autoref (?P<attrs>[^>]*)>(?P<title>.*?)</autoref>", re.DOTALL)
_IDENTIFIER_ATTR = re.compile(r'\bidentifier="(?P<identifier>[^"]*)"')
_PYTHON_PATH = re.compile(r"[A-Za-z_][\w.]*\Z")
_TAG = re.compile(r"<(?P<close>/?)(?P<name>[A-Za-z][\w-]*)(?P<rest>(?:\s[^<>]*)?)>")
# what a docstring may mean as HTML (and what mkdocstrings writes); any other tag is prose
_HTML_TAGS = frozenset("""
    a abbr article aside autoref b blockquote br caption code col colgroup dd del details dfn div
    dl dt em figcaption figure footer h1 h2 h3 h4 h5 h6 header hr i img input ins kbd label li
    mark nav ol p pre q s samp section small span strong sub summary sup svg path table tbody td
    tfoot th thead time tr u ul var wbr
""".split())


def link_roles(content: str) -> str:
    """Turn Sphinx roles into optional autorefs (links where the object is rendered on the site,
    else plain code). An unqualified name is looked up among the objects of the same page."""
    if ":<code>" not in content:
        return content
    on_page = set(_OBJECT_ID.findall(content))

    def replace(match: re.Match) -> str:
        target = match["target"]
        shown = target.rsplit(".", 1)[-1] if match["tilde"] else target
        title = f"<code>{html.escape(shown)}{match['call'] or ''}</code>"
        if not target.startswith("textrnn."):
            candidates = sorted(i for i in on_page if i.endswith(f".{target}"))
            if len(candidates) != 1:
                return title
            target = candidates[0]
        return f'<autoref optional identifier="{html.escape(target)}">{title}</autoref>'

    return _ROLE.sub(replace, content)


def unlink_non_identifiers(content: str) -> str:
    """``[--baseline REV] [--out reports]`` in a usage line reads as a Markdown reference link;
    a target that cannot be a Python name was never meant as one: give the text back."""

    def replace(match: re.Match) -> str:
        found = _IDENTIFIER_ATTR.search(match["attrs"])
        if found is None or _PYTHON_PATH.match(html.unescape(found["identifier"])):
            return match.group(0)
        return f"[{match['title']}] [{found['identifier']}]"

    return _AUTOREF.sub(replace, content)


def escape_unknown_tags(content: str) -> str:
    """``tune_<task>@<name>`` in a docstring is prose, not HTML: show it instead of hiding it."""

    def replace(match: re.Match) -> str:
        if match["name"].lower() in _HTML_TAGS:
            return match.group(0)
        return html.escape(match.group(0), quote=False)

    return _TAG.sub(replace, content)


def fix_literal_markers(content: str) -> str:
    """reStructuredText's ``::`` before a literal block: drop a lone one, keep one colon of
    ``text::``."""
    return re.sub(r"<p>::</p>\n?", "", content).replace("::</p>", ":</p>")


def on_page_content(html_text: str, page: Page, config: MkDocsConfig, files: Files) -> str:
    if not page.file.src_uri.startswith("reference/"):
        return html_text
    html_text = unlink_non_identifiers(html_text)
    html_text = escape_unknown_tags(html_text)
    html_text = fix_literal_markers(html_text)
    return link_roles(html_text)
