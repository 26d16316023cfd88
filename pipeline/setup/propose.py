"""The setup proposal: which templates, which values, and where each value comes from.

One typed object (``SetupProposal``) is what the LLM returns in a single instructor call; its
validator renders the files, validates them with jsonschema (and the cross-file references that
interface-input atoms declare), checks every citation against the atom's quotes, and raises the
validator's exact messages, which instructor sends back as the re-ask. Offline, the same object
is built from the templates alone (their defaults) and the answers win over both.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, Field, ValidationInfo, model_validator

from pipeline.change import docs, paths
from pipeline.change import schemas as target_schemas
from pipeline.setup.knowledge import Knowledge, Template, quote_of
from pipeline.workspace import Workspace


class Citation(BaseModel):
    atom: str = Field(description="Id of the atom the value comes from.")
    quote: str = Field(description="The expert's words in that atom that support the value (verbatim).")


class ProposedValue(BaseModel):
    pointer: str = Field(description="JSON Pointer into the file, e.g. /spec/destination/namespace.")
    value: Any = Field(description="The value (JSON).")
    citation: Citation | None = Field(None, description="Where the knowledge base says so; omit for assumptions.")
    assumption: bool = Field(False, description="True when no atom supports the value: the person should tune it.")


class ProposedFile(BaseModel):
    template: str = Field(description="Id of the config-template atom the file starts from.")
    values: list[ProposedValue] = Field(default_factory=list, description="Values that differ from the template.")


class SetupProposal(BaseModel):
    """Files to create from templates, each changed value with a citation or marked as an assumption."""

    files: list[ProposedFile]

    @model_validator(mode="after")
    def _valid(self, info: ValidationInfo) -> SetupProposal:
        ctx = info.context or {}
        if "knowledge" in ctx:
            rendered = render(ctx["knowledge"], ctx["workspace"], self, ctx.get("answers") or {})
            problems = [p for r in rendered for p in r.problems] + cross_problems(ctx["knowledge"], rendered)
            if not rendered:
                problems.append("the proposal has no files; propose at least one file from a template")
            if problems:
                raise ValueError("the proposal does not validate:\n" + "\n".join(f"- {p}" for p in problems))
        return self


@dataclass
class Rendered:
    template: Template
    text: str
    doc: Any
    sources: dict[str, tuple[str, ...]] = field(default_factory=dict)  # pointer -> explanation
    problems: list[str] = field(default_factory=list)

    @property
    def file(self) -> str:
        return self.template.file


def _pointer(text: str) -> str:
    return text if text.startswith("/") else paths.to_pointer(paths.parse(text))


def _quote_ok(k: Knowledge, c: Citation) -> bool:
    atom = k.atoms.get(c.atom)
    if atom is None:
        return False
    needle = " ".join(c.quote.split()).casefold()
    if not needle:
        return False
    hay = [getattr(s, "quote", "") or "" for s in atom.meta.sources] + [atom.body]
    return any(needle in " ".join(h.split()).casefold() for h in hay)


def render(
    k: Knowledge, workspace: Workspace, proposal: SetupProposal, answers: dict[str, dict[str, Any]]
) -> list[Rendered]:
    """Each proposed file: template + values + answers, dumped in the template's style and validated."""
    by_id = {t.id: t for t in k.templates} | {t.id: t for t in _all_templates(k)}
    out: list[Rendered] = []
    seen: set[str] = set()
    for pf in proposal.files:
        t = by_id.get(pf.template)
        if t is None:
            out.append(
                Rendered(
                    Template(None, None, "yaml", "", pf.template),  # type: ignore[arg-type]  # no atom: unknown template
                    "",
                    None,
                    problems=[f"unknown template '{pf.template}' (known: {', '.join(sorted(by_id))})"],
                )
            )
            continue
        if t.id in seen:
            continue
        seen.add(t.id)
        out.append(_render_one(k, workspace, t, pf, answers.get(t.file, {})))
    return out


def _all_templates(k: Knowledge) -> list[Template]:
    from pipeline.setup.knowledge import template_of

    return [t for a in k.atoms.values() if a.meta.type == "config-template" and (t := template_of(a))]


def _render_one(k: Knowledge, workspace: Workspace, t: Template, pf: ProposedFile, answers: dict[str, Any]) -> Rendered:
    loaded = docs.load(t.text, t.file)
    doc = loaded.docs[0]
    r = Rendered(t, "", doc)
    make_map = docs.new_map if loaded.kind == "yaml" else dict
    for v in pf.values:
        try:
            ptr = _pointer(v.pointer)
            paths.set_value(doc, paths.parse(ptr), v.value, make_map, docs.restyle)
        except (paths.Unsafe, Exception) as exc:  # noqa: BLE001 - a bad pointer is a re-ask, not a crash
            r.problems.append(f"{t.file}: cannot set {v.pointer}: {getattr(exc, 'message', exc)}")
            continue
        if v.citation is not None:
            if not _quote_ok(k, v.citation):
                r.problems.append(
                    f"{t.file}: the citation of {ptr} does not resolve: atom '{v.citation.atom}' has no "
                    f'quote "{v.citation.quote}"'
                )
            r.sources[ptr] = ("cite", v.citation.atom, v.citation.quote)
        elif v.assumption:
            r.sources[ptr] = ("assumption",)
        else:
            r.problems.append(f"{t.file}: the value at {ptr} has neither a citation nor assumption: true")
    for ptr, value in answers.items():
        ptr = _pointer(ptr)
        try:
            paths.set_value(doc, paths.parse(ptr), value, make_map, docs.restyle)
        except paths.Unsafe as exc:
            r.problems.append(f"{t.file}: cannot set {ptr} from the answers: {exc}")
            continue
        r.sources[ptr] = ("answer",)
    r.text = loaded.dump(loaded.docs)
    if t.schema:
        try:
            _, path = target_schemas.resolve(workspace, t.schema)
            v = target_schemas.validator(path)
            r.problems += [f"{t.file}: {m}" for m in target_schemas.errors(v, docs.plain(doc))]
        except Exception as exc:  # noqa: BLE001 - a missing schema is reported like a validation error
            r.problems.append(f"{t.file}: schema '{t.schema}': {getattr(exc, 'message', exc)}")
    return r


def cross_problems(k: Knowledge, rendered: list[Rendered]) -> list[str]:
    """Values that must name something another file of the proposal defines (``refers_to``)."""
    out = []
    for var in k.variables:
        if var.refers_to is None:
            continue
        schema, target = var.refers_to
        targets = [r for r in rendered if r.doc is not None and r.template.schema == schema]
        if not targets:
            continue
        names = {
            json.dumps(docs.plain(x), sort_keys=True)
            for r in targets
            if (x := paths.get(r.doc, paths.parse(target) if target else ())) is not paths.MISSING
        }
        for r in rendered:
            if r.doc is None or r.template.schema != var.schema:
                continue
            value = paths.get(r.doc, paths.parse(var.pointer))
            if value is not paths.MISSING and json.dumps(docs.plain(value), sort_keys=True) not in names:
                out.append(
                    f"{r.file}: {var.pointer} = {json.dumps(docs.plain(value))} names no {target} of the "
                    f"{schema} files in this proposal ({', '.join(sorted(names))})"
                )
    return out


def explain(k: Knowledge, r: Rendered) -> list[tuple[str, Any, str]]:
    """(pointer, value, where it comes from) for every leaf value of the file."""
    inputs = {v.pointer: v.atom for v in k.variables_for(r.template.schema)}
    tq = quote_of(r.template.atom)
    rows = []
    for ptr, value in _leaves(r.doc, ()):
        src = r.sources.get(ptr)
        if src is None:
            src = next((s for p, s in r.sources.items() if ptr.startswith(p + "/")), None)
        if src and src[0] == "answer":
            how = "given in your answers"
        elif src and src[0] == "cite":
            how = f'atom `{src[1]}`: "{src[2]}"'
        elif src and src[0] == "assumption":
            how = "assumption: tune this"
        elif ptr in inputs and quote_of(inputs[ptr]):
            q, where = quote_of(inputs[ptr])  # type: ignore[misc]  # quote_of returned a pair on the line above
            how = f'template default; atom `{inputs[ptr].meta.id}`: "{q}" ({where})'
        elif tq:
            how = f'template `{r.template.id}`: "{tq[0]}" ({tq[1]})'
        else:
            how = "assumption: tune this (template default, no quote)"
        rows.append((ptr, docs.plain(value), how))
    return rows


def _leaves(node: Any, prefix: tuple) -> list[tuple[str, Any]]:
    if isinstance(node, dict) and node:
        return [x for key, v in node.items() for x in _leaves(v, (*prefix, key))]
    if isinstance(node, list) and node:
        return [x for i, v in enumerate(node) for x in _leaves(v, (*prefix, i))]
    return [(paths.to_pointer(prefix), node)]


def offline(k: Knowledge) -> SetupProposal:
    """Every retrieved template with its defaults (answers are applied when rendering)."""
    return SetupProposal(files=[ProposedFile(template=t.id) for t in k.templates])
