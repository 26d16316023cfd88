"""The atoms setup builds from: config templates (with the variables interface-input atoms
describe), and procedures; retrieved for a situation by word overlap (offline, deterministic)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline import atoms
from pipeline.errors import InputError, NotFoundError
from pipeline.models import Atom
from pipeline.workspace import Workspace

_WORD = re.compile(r"[a-z0-9]+")
_STOP = set(
    "a an and are as at be by for from in into is it of on or our the to we with you your this that i me my us".split()
)


@dataclass
class Template:
    atom: Atom
    schema: str | None
    lang: str
    text: str
    file: str

    @property
    def id(self) -> str:
        return self.atom.meta.id


@dataclass
class Variable:
    atom: Atom
    schema: str
    pointer: str
    refers_to: tuple[str, str] | None = None


@dataclass
class Knowledge:
    templates: list[Template]
    variables: list[Variable]
    procedures: list[Atom]
    atoms: dict[str, Atom] = field(default_factory=dict)

    def variables_for(self, schema: str | None) -> list[Variable]:
        return [v for v in self.variables if v.schema == schema]


def _words(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP and len(w) > 1}


def _score(words: set[str], atom: Atom) -> float:
    m = atom.meta
    text = " ".join([m.title, m.summary, " ".join(m.tags), atom.body[:2000]])
    mine = _words(text)
    if not mine:
        return 0.0
    return len(words & mine) / (len(mine) ** 0.5)


def quote_of(atom: Atom) -> tuple[str, str] | None:
    """(quote, where) of the atom's first source: an interview quote, or for a document source the
    first blockquote of the body (the document's own words); None when there is neither."""
    for s in atom.meta.sources:
        q = getattr(s, "quote", None)
        if q:
            return q, f"{s.interview} @ {s.start:g}s"  # type: ignore[union-attr]  # a source with a quote is an interview source (start is set)
        doc = getattr(s, "document", None)
        if doc:
            block = _first_blockquote(atom.body)
            if block:
                return block, f"{doc} § {s.heading}"  # type: ignore[union-attr]  # a source with a document is a document source (heading is set)
    return None


def _first_blockquote(body: str) -> str | None:
    lines: list[str] = []
    for line in body.splitlines():
        if line.startswith(">"):
            lines.append(line[1:].strip())
        elif lines:
            break
    text = " ".join(x for x in lines if x)
    return text or None


def template_of(atom: Atom) -> Template | None:
    _, _, code = atoms.parse_body(atom.body)
    blocks = [b for b in code if b.lang in ("yaml", "yml", "json")]
    chosen = next((b for b in blocks if b.section and b.section.strip().lower() == "template"), None) or (
        blocks[0] if blocks else None
    )
    if chosen is None:
        return None
    lang = "json" if chosen.lang == "json" else "yaml"
    return Template(atom, atom.meta.config_schema, lang, chosen.content, f"{atom.meta.id}.{lang}")


def load(workspace: Workspace, situation: str, max_atoms: int) -> Knowledge:
    """Templates relevant to the situation (all of them when none scores), their variables, procedures."""
    all_atoms: dict[str, Atom] = {}
    for path in workspace.atom_files():
        try:
            atom = atoms.read(path)
        except InputError:
            continue  # kb check reports broken atoms; setup uses the sound ones
        if atom.meta.status != "archived":
            all_atoms[atom.meta.id] = atom
    words = _words(situation)
    templates = [t for a in all_atoms.values() if a.meta.type == "config-template" and (t := template_of(a))]
    if not templates:
        raise NotFoundError(
            "the knowledge base has no config-template atom to start from",
            'Write one with `kb new config-template "..."` (a fenced yaml block under ## Template).',
        )
    scored = sorted(((_score(words, t.atom), t.id, t) for t in templates), key=lambda x: (-x[0], x[1]))
    best = scored[0][0]
    chosen = [t for s, _, t in scored if best == 0 or s >= best * 0.5][:max_atoms]
    variables = _variables(all_atoms, {t.schema for t in chosen})
    # a value that must name something in another file brings that file's template along
    needed = {v.refers_to[0] for v in variables if v.refers_to} - {t.schema for t in chosen}
    if needed:
        chosen += [t for t in sorted(templates, key=lambda t: t.id) if t.schema in needed][: max(1, len(needed))]
        variables = _variables(all_atoms, {t.schema for t in chosen})
    procedures = [a for a in all_atoms.values() if a.meta.type == "procedure"]
    procedures = [
        a
        for s, _, a in sorted(((_score(words, a), a.meta.id, a) for a in procedures), key=lambda x: (-x[0], x[1]))
        if s > 0
    ][:3]
    return Knowledge(sorted(chosen, key=lambda t: t.id), variables, procedures, all_atoms)


def _variables(all_atoms: dict[str, Atom], schemas: set[str | None]) -> list[Variable]:
    out = []
    for a in sorted(all_atoms.values(), key=lambda a: a.meta.id):
        if a.meta.type != "interface-input":
            continue
        for ref in a.meta.applies_to:
            if ref.schema_name in schemas and ref.pointer:
                rt = (ref.refers_to.schema_name, ref.refers_to.pointer) if ref.refers_to else None
                out.append(Variable(a, ref.schema_name, ref.pointer, rt))
    return out


def describe(k: Knowledge) -> dict[str, Any]:
    """What the LLM is shown: templates (text), variables (with the expert's words), procedures."""
    return {
        "templates": [{"template": t.id, "file": t.file, "schema": t.schema, "text": t.text} for t in k.templates],
        "variables": [
            {
                "template_schema": v.schema,
                "pointer": v.pointer,
                "atom": v.atom.meta.id,
                "title": v.atom.meta.title,
                "summary": v.atom.meta.summary,
                "quote": (quote_of(v.atom) or ("", ""))[0],
            }
            for v in k.variables
        ],
        "procedures": [
            {"atom": a.meta.id, "title": a.meta.title, "quote": (quote_of(a) or ("", ""))[0]} for a in k.procedures
        ],
    }
