"""MkDocs hooks of the slamjax site: the pages that are generated rather than written.

* ``<!-- readme: FIRST .. NEXT -->`` in a page is replaced by README.md's ``##`` sections from
  FIRST up to, not including, NEXT (``.. NEXT``: from the top, title included; ``FIRST ..``: to
  the end; ``FIRST`` alone: that section). A trailing ``promote`` moves the headings up one level
  (the section's ``##`` becomes the page title). Links to README anchors that another page shows
  are pointed at that page. Every ``##`` section of the README must be on some page, so the
  README and the site cannot drift apart: the build fails naming the sections left out.
* ``<!-- slamjax:config-schema -->``: the keys of ``slamjax fit``'s YAML file, from
  ``slamjax._config.SCHEMA_DOC`` (what ``slamjax fit --help`` prints).
* ``<!-- slamjax:commands -->``: ``--help`` of every ``slamjax`` command, from ``slamjax.cli.build_parser``.
* ``<!-- slamjax:notebooks -->`` and ``<!-- slamjax:examples -->``: the notebooks (``notebooks/*.ipynb``,
  whichever exist) and scripts (``examples/*.py``, ``configs/*.yaml``), with their titles; the
  files themselves are copied into the site under the same paths.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import posixpath
import re
import shlex
from pathlib import Path

from markdown.extensions.toc import slugify
from mkdocs.exceptions import PluginError
from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
#: repository files copied into the site, so that pages can link to them
COPIED = ("notebooks/*.ipynb", "examples/*.py", "configs/*.yaml")

_MARKER = re.compile(r"<!--\s*readme:(.*?)-->")
_HEADING = re.compile(r"^(#{1,6}) ", re.MULTILINE)
_FENCE = re.compile(r"^\s*(```|~~~)")

_sections: list[tuple[str, str]] = []  # (heading title, text) of README.md; the top (title, intro) is ""
_shown: dict[str, list[int]] = {}  # page src_uri -> indexes into _sections
_anchors: dict[str, str] = {}  # slug of a README heading -> src_uri of the page showing it


# ----------------------------------------------------------------------------- README sections


def _split_readme() -> list[tuple[str, str]]:
    sections, title, lines, fenced = [], "", [], False
    for line in README.read_text(encoding="utf-8").splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        if not fenced and line.startswith("## "):
            sections.append((title, "".join(lines)))
            title, lines = line[3:].strip(), []
        lines.append(line)
    sections.append((title, "".join(lines)))
    return sections


def _selection(page: str, spec: str) -> tuple[list[int], bool]:
    words = shlex.split(spec)
    promote = bool(words) and words[-1] == "promote"
    words = words[:-1] if promote else words
    titles = [title for title, _ in _sections]

    def index(title: str) -> int:
        if title not in titles:
            raise PluginError(f"{page}: README.md has no section '## {title}' (marker <!-- readme:{spec}-->)")
        return titles.index(title)

    if ".." in words:
        at = words.index("..")
        first = index(" ".join(words[:at])) if words[:at] else 0
        stop = index(" ".join(words[at + 1:])) if words[at + 1:] else len(_sections)
        chosen = list(range(first, stop))
    else:
        chosen = [index(" ".join(words))]
    if not chosen:
        raise PluginError(f"{page}: <!-- readme:{spec}--> selects no section of README.md")
    return chosen, promote


def _headings(text: str):
    """(level, title) of the headings of a Markdown text, outside fenced code."""
    fenced = False
    for line in text.splitlines():
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and (m := _HEADING.match(line)):
            yield len(m.group(1)), line[m.end():].strip()


def _promote(text: str) -> str:
    out, fenced = [], False
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            fenced = not fenced
        elif not fenced and line.startswith("##"):
            line = line[1:]
        out.append(line)
    return "".join(out)


def _point_links(text: str, page: str) -> str:
    """Links to README anchors shown on another page go to that page."""

    def repl(m: re.Match) -> str:
        target = _anchors.get(m.group(1))
        if target is None or target == page:
            return m.group(0)
        return f"]({posixpath.relpath(target, posixpath.dirname(page) or '.')}#{m.group(1)})"

    return re.sub(r"\]\(#([^)\s]+)\)", repl, text)


# ----------------------------------------------------------------------------- generated pages


def _config_schema() -> str:
    from slamjax._config import SCHEMA_DOC

    head, *lines = SCHEMA_DOC.splitlines()
    rows = []
    for line in lines:
        m = re.match(r"^\s*(\S+)\s+(.*?)\s*\[(required|default: .*)\]\s*$", line)
        if m is None:  # a format the table does not know: show the text as slamjax prints it
            return f"```text\n{SCHEMA_DOC}\n```\n"
        key, meaning, default = m.groups()
        default = "required" if default == "required" else f"`{default.removeprefix('default: ')}`"
        rows.append(f"| `{key}` | {meaning.replace('|', '&#124;')} | {default.replace('|', '&#124;')} |")
    return f"{head[:1].upper()}{head[1:].rstrip(':')}:\n\n| key | meaning | default |\n|---|---|---|\n" + "\n".join(rows) + "\n"


def _commands() -> str:
    from slamjax.cli import build_parser

    old = os.environ.get("COLUMNS")
    os.environ["COLUMNS"] = "100"  # argparse wraps to the terminal's width
    try:
        parser = build_parser()
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parts = [f"```text\n{parser.format_help()}```\n"]
        for name, command in sub.choices.items():
            command.epilog = None  # fit's epilog is the configuration schema, in the table above
            parts.append(f"### `slamjax {name}`\n\n```text\n{command.format_help()}```\n")
    finally:
        if old is None:
            os.environ.pop("COLUMNS", None)
        else:
            os.environ["COLUMNS"] = old
    return "\n".join(parts)


def _notebook_title(path: Path) -> str:
    try:
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    except (OSError, ValueError, KeyError):
        return path.stem
    for cell in cells:
        if cell.get("cell_type") == "markdown":
            for line in "".join(cell.get("source", [])).splitlines():
                if line.startswith("#"):
                    return line.lstrip("#").strip()
    return path.stem


def _notebooks() -> str:
    paths = sorted((ROOT / "notebooks").glob("*.ipynb"))
    if not paths:
        return "No notebook in `notebooks/` yet.\n"
    rows = [f"| [`{p.name}`](notebooks/{p.name}) | {_notebook_title(p)} |" for p in paths]
    return "| notebook | what it shows |\n|---|---|\n" + "\n".join(rows) + "\n"


def _examples() -> str:
    rows = []
    for p in sorted((ROOT / "examples").glob("*.py")):
        doc = ast.get_docstring(ast.parse(p.read_text(encoding="utf-8"))) or ""
        rows.append(f"| [`examples/{p.name}`](examples/{p.name}) | {doc.split(chr(10))[0].strip()} |")
    for p in sorted((ROOT / "configs").glob("*.yaml")):
        comment = []  # the file's leading comment block
        for line in p.read_text(encoding="utf-8").splitlines():
            if not line.startswith("#"):
                break
            comment.append(line.lstrip("#").strip())
        rows.append(f"| [`configs/{p.name}`](configs/{p.name}) | {' '.join(comment)} |")
    return "| file | what it does |\n|---|---|\n" + "\n".join(rows) + "\n"


_GENERATED = {"config-schema": _config_schema, "commands": _commands, "notebooks": _notebooks, "examples": _examples}


# ----------------------------------------------------------------------------- MkDocs events


def on_files(files, config):
    global _sections
    _sections = _split_readme()
    _shown.clear()
    _anchors.clear()
    for file in files.documentation_pages():
        for spec in _MARKER.findall(Path(file.abs_src_path).read_text(encoding="utf-8")):
            chosen, _ = _selection(file.src_uri, spec)
            _shown.setdefault(file.src_uri, []).extend(chosen)
            for i in chosen:
                for _, title in _headings(_sections[i][1]):
                    _anchors.setdefault(slugify(title, "-"), file.src_uri)
    left_out = [title or "(title and introduction)" for i, (title, _) in enumerate(_sections)
                if not any(i in shown for shown in _shown.values())]
    if left_out:
        raise PluginError("README.md sections on no page of the site (add them to a <!-- readme: --> "
                          "marker in docs/): " + ", ".join(left_out))
    for pattern in COPIED:
        for path in sorted(ROOT.glob(pattern)):
            uri = path.relative_to(ROOT).as_posix()
            if files.get_file_from_path(uri) is None:
                files.append(File(uri, src_dir=str(ROOT), dest_dir=config["site_dir"],
                                  use_directory_urls=config["use_directory_urls"]))
    return files


def on_page_markdown(markdown, page, config, files):
    def readme(m: re.Match) -> str:
        chosen, promote = _selection(page.file.src_uri, m.group(1))
        text = "".join(_sections[i][1] for i in chosen)
        return _point_links(_promote(text) if promote else text, page.file.src_uri)

    def generated(m: re.Match) -> str:
        return _GENERATED[m.group(1)]()

    markdown = _MARKER.sub(readme, markdown)
    return re.sub(r"<!--\s*slamjax:(" + "|".join(_GENERATED) + r")\s*-->", generated, markdown)
