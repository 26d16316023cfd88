"""Escaping and links for generated pages: HTML for raw blocks, Markdown-inert text for Markdown.

Every value taken from atom front matter, interview files or transcripts is HTML-escaped where it
is put into a page (titles and tags too, because mkdocs-material prints them unescaped).
"""

from __future__ import annotations

import datetime as dt
import html
import os
import posixpath
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import yaml

from pipeline.models import Atom

UrlFn = Callable[[str, str], str]  # (from src_uri, to src_uri or asset path) -> relative URL


def esc(value: Any) -> str:
    """HTML-escape any value (quotes too: safe in attributes)."""
    return html.escape(str(value), quote=True)


_MD_SPECIAL = re.compile(r"[\\`*_{}\[\]<>&|~^$!#]")


def md(value: Any) -> str:
    """Text that Markdown renders literally: whitespace collapsed, markup characters as entities."""
    text = " ".join(str(value).split())
    return _MD_SPECIAL.sub(lambda m: f"&#{ord(m.group(0))};", text)


def one_line(value: Any) -> str:
    """Escaped HTML text on one line (a blank line would end a raw HTML block in Markdown)."""
    return esc(" ".join(str(value).split()))


def norm_title(title: str) -> str:
    return " ".join(title.casefold().split())


def atom_src(atom: Atom) -> str:
    """An atom's page source: its file's path in the workspace, so links in its body resolve as in git."""
    path = (atom.path or "").replace(os.sep, "/")
    if path.startswith("atoms/") and path.endswith(".md"):
        return path
    return f"atoms/{atom.meta.type}/{atom.meta.id}.md"


def interview_src(iid: str) -> str:
    return f"interviews/{iid}.md"


def rel_md(from_src: str, to_src: str) -> str:
    """Relative Markdown link between two source files (mkdocs validates and rewrites it)."""
    return posixpath.relpath(to_src, posixpath.dirname(from_src) or ".")


def front_matter(title: str, **extra: Any) -> str:
    data = {"title": esc(title), **extra}
    return "---\n" + yaml.safe_dump(data, allow_unicode=True, sort_keys=False, width=4096) + "---\n\n"


def last_changed(atom: Atom) -> dt.date:
    return atom.meta.updated or atom.meta.created


def link_to(from_src: str, atom: Atom) -> str:
    return f"[{md(atom.meta.title)}]({rel_md(from_src, atom_src(atom))})"


def table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> list[str]:
    out = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    out += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return out
