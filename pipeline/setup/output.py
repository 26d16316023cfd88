"""``kb setup new`` and ``kb setup apply``: the proposal folder, and applying it through the change
engine (diff first, never overwriting a changed file without ``force``, all-or-none, rollback)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pipeline.change import engine
from pipeline.change.recipe import parse_value
from pipeline.config import Settings
from pipeline.errors import ConflictError, InputError, KbError, NotFoundError
from pipeline.setup import knowledge, propose
from pipeline.textio import read_utf8
from pipeline.workspace import Workspace, atomic_write_json, atomic_write_text, sha256_bytes, sha256_json

SYSTEM = (
    "You set up a product from the administrator's situation, using only the knowledge base's config "
    "templates. Return the files to create (each from a template) and only the values that must differ "
    "from the template. Every value cites the atom and the expert's exact words that support it; a value "
    "no atom supports is marked assumption: true so the person tunes it. Files must validate against their "
    "schema. Values given in `answers` are the person's own and are applied after yours."
)


class SetupInvalid(KbError):
    """The files do not validate (offline answers, or the model after every re-ask): a gate, exit 3."""

    exit_code = 3


@dataclass
class Proposal:
    id: str
    folder: Path
    files: list[str]
    assumptions: int
    mode: str


def parse_answers(file: Path | None, sets: list[str]) -> dict[str, dict[str, Any]]:
    """``--answers`` (YAML ``file: {pointer: value}``) and ``--set FILE:POINTER=VALUE`` (later wins)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    if file is not None:
        from pipeline import safeload

        text = read_utf8(file, "Re-save it as UTF-8.")
        safeload.check_yaml_limits(text, path=file)
        try:
            data = yaml.safe_load(text) or {}
        except yaml.YAMLError as exc:
            raise InputError(
                f"not valid YAML: {' '.join(str(exc).split())[:160]}", "Fix the answers file.", path=file
            ) from None
        if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
            raise InputError(
                "answers map each file to {pointer: value}", "e.g. app.yaml: {/spec/project: web}", path=file
            )
        out = {str(k): {str(p): v for p, v in m.items()} for k, m in data.items()}
    for item in sets:
        target, sep, rest = item.partition(":")
        pointer, eq, value = rest.partition("=")
        if not sep or not eq or not target or not pointer:
            raise InputError(f"--set {item!r}: expected FILE:POINTER=VALUE", "e.g. --set app.yaml:/spec/project=web")
        out.setdefault(target, {})[pointer] = parse_value(value)
    return out


def new(
    settings: Settings,
    workspace: Workspace,
    situation: str,
    answers: dict[str, dict[str, Any]],
    *,
    use_llm: bool | None = None,
) -> Proposal:
    """Retrieve, propose (LLM or offline), validate, write ``proposals/setup-<id>/``."""
    from pipeline.backends.llm import configured

    k = knowledge.load(workspace, situation, settings.setup.max_atoms)
    known = {t.file for t in propose._all_templates(k)}
    unknown = sorted(set(answers) - known)
    if unknown:
        raise InputError(
            f"answers for unknown file(s): {', '.join(unknown)}",
            f"Setup files are named after their templates: {', '.join(sorted(known))}.",
        )
    llm = configured(settings) if use_llm is None else use_llm
    record: dict[str, Any] = {
        "mode": "offline",
        "model": None,
        "requests": 0,
        "tokens_in": 0,
        "tokens_out": 0,
        "cost_usd": 0.0,
    }
    if llm:
        proposal, record = _ask(settings, workspace, k, situation, answers)
    else:
        proposal = propose.offline(k)
    extra = [
        propose.ProposedFile(template=t)
        for t in _templates_for(answers, k)
        if t not in {f.template for f in proposal.files}
    ]
    proposal = propose.SetupProposal.model_construct(files=[*proposal.files, *extra])
    rendered = propose.render(k, workspace, proposal, answers)
    problems = [p for r in rendered for p in r.problems] + propose.cross_problems(k, rendered)
    if problems:
        raise SetupInvalid(
            "the setup files do not validate:\n" + "\n".join(f"  {p}" for p in problems),
            "Fix the answers (FILE:POINTER=VALUE) or the templates; `kb check` shows template problems.",
        )
    pid = (
        "setup-"
        + sha256_json(
            {
                "situation": situation,
                "answers": answers,
                "mode": record["mode"],
                "model": record["model"],
                "reply": proposal.model_dump(mode="json"),
                "templates": {r.template.id: sha256_bytes(r.template.text.encode()) for r in rendered},
            }
        )[:12]
    )
    folder = workspace.proposals_dir / pid
    return _write(folder, pid, situation, answers, k, rendered, record)


def _templates_for(answers: dict[str, dict[str, Any]], k: knowledge.Knowledge) -> list[str]:
    by_file = {t.file: t.id for t in propose._all_templates(k)}
    return [by_file[f] for f in sorted(answers) if f in by_file]


def _ask(
    settings: Settings, workspace: Workspace, k: knowledge.Knowledge, situation: str, answers: dict[str, dict[str, Any]]
) -> tuple[propose.SetupProposal, dict[str, Any]]:
    from pipeline.backends.llm import make_client

    user = json.dumps(
        {"situation": situation, "answers": answers, **knowledge.describe(k)}, indent=1, ensure_ascii=False
    )
    client = make_client(settings)
    try:
        proposal, usage = client.extract(
            propose.SetupProposal,
            [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}],
            validation_context={"knowledge": k, "workspace": workspace, "answers": answers},
        )
    finally:
        client.close()
    return proposal, {
        "mode": "llm",
        "model": client.model,
        "requests": usage.requests,
        "tokens_in": usage.tokens_in,
        "tokens_out": usage.tokens_out,
        "cost_usd": round(usage.cost_usd, 6),
    }


def _write(
    folder: Path,
    pid: str,
    situation: str,
    answers: dict,
    k: knowledge.Knowledge,
    rendered: list[propose.Rendered],
    record: dict[str, Any],
) -> Proposal:
    files, assumptions = [], 0
    explain = [
        f"# Setup proposal {pid}",
        "",
        f"Situation: {situation}",
        "",
        "Mode: "
        + (
            "offline (templates + answers)"
            if record["mode"] == "offline"
            else f"{record['model']}, {record['requests']} request(s), ${record['cost_usd']:.4f}"
        ),
        "",
        "Every value says where it comes from: an atom and the expert's words, your answers, or an "
        "assumption to tune by hand.",
        "",
    ]
    for r in rendered:
        atomic_write_text(folder / "files" / r.file, r.text)
        rows = propose.explain(k, r)
        assumptions += sum(1 for _, _, how in rows if how.startswith("assumption"))
        files.append(
            {
                "name": r.file,
                "template": r.template.id,
                "schema": r.template.schema,
                "sha256": sha256_bytes(r.text.encode("utf-8")),
                "valid": True,
            }
        )
        explain += [
            f"## {r.file}",
            "",
            f"From template `{r.template.id}`"
            + (f", validated against schema `{r.template.schema}`." if r.template.schema else "."),
            "",
            "| value | set to | where it comes from |",
            "|---|---|---|",
        ]
        explain += [
            f"| `{p}` | `{json.dumps(v, ensure_ascii=False)}` | {how.replace('|', '/')} |" for p, v, how in rows
        ]
        explain.append("")
    if k.procedures:
        explain += ["## Next steps", ""]
        for a in k.procedures:
            q = knowledge.quote_of(a)
            explain.append(f"- `{a.meta.id}`: {a.meta.title}" + (f' ("{q[0]}")' if q else ""))
        explain.append("")
    plan = {
        "id": pid,
        "situation": situation,
        "answers": answers,
        **record,
        "files": files,
        "atoms": sorted(
            {r.template.id for r in rendered}
            | {v.atom.meta.id for v in k.variables}
            | {a.meta.id for a in k.procedures}
        ),
        "assumptions": assumptions,
    }
    atomic_write_text(folder / "EXPLAIN.md", "\n".join(explain))
    atomic_write_json(folder / "plan.json", plan)
    return Proposal(pid, folder, [str(f["name"]) for f in files], assumptions, record["mode"])


def plan_apply(workspace: Workspace, pid: str, to_dir: Path) -> tuple[engine.Plan, list[str]]:
    """The change plan that writes the proposal's files into ``to_dir``, and the existing files it would replace."""
    folder = workspace.proposals_dir / pid
    if "/" in pid or not (folder / "plan.json").is_file():
        raise NotFoundError(
            f"no setup proposal '{pid}' in {workspace.relative(workspace.proposals_dir)}/",
            'Make one with `kb setup new "<situation>"`.',
        )
    meta = json.loads((folder / "plan.json").read_text(encoding="utf-8"))
    contents = []
    for f in meta["files"]:
        data = (folder / "files" / f["name"]).read_bytes()
        if sha256_bytes(data) != f["sha256"]:
            raise ConflictError(
                f"proposal {pid}: files/{f['name']} was edited after it was proposed",
                "Make a new proposal, or copy the file by hand.",
            )
        contents.append((to_dir / f["name"], data))
    plan = engine.plan_contents(workspace, contents, kind="setup", source=pid, base=Path.cwd())
    existing = [f.display for f in plan.files if f.status == "changed" and f.sha256_before is not None]
    return plan, existing


def refuse_overwrite(workspace: Workspace, plan: engine.Plan, existing: list[str], to_dir: Path) -> None:
    raise ConflictError(
        f"{len(existing)} file(s) in {to_dir} differ from the proposal: {', '.join(existing)}",
        f"See the diff ({workspace.relative(plan.folder)}/plan.patch); pass --force to replace them.",
    )
