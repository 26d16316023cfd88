"""kb distill with the LLM backend: real instructor + openai over HTTP against the scripted fake.

The transcript is a real excerpt of Ship It! #59 (Changelog Media, CC BY-SA 4.0).
"""

from __future__ import annotations

import pytest

from pipeline import atoms
from pipeline.config import Settings
from pipeline.errors import BudgetExceededError
from pipeline.index.runlog import report as cost_report
from pipeline.reporting import Reporter
from pipeline.stages import distill
from pipeline.transcripts.grounding import verify_quote
from pipeline.workspace import Workspace
from tests.fakes.distill_model import excerpt, excerpt_turns, grounded_model, item, make_workspace, reask_messages
from tests.fakes.openai_server import OpenAIServer, slow, status, tool_call
from tests.paths import TESTS_DATA


@pytest.fixture
def server():
    with OpenAIServer() as srv:
        yield srv


@pytest.fixture
def ws(tmp_path):
    return Workspace.at(make_workspace(tmp_path / "ws", {"ship-it-59": excerpt()}))


def cfg(ws: Workspace, server: OpenAIServer, **extra) -> Settings:
    values = {"llm.base_url": server.base_url, "llm.backoff_s": 0.01, "llm.timeout_s": 3.0, **extra}
    return Settings.load(ws.root, **values)


def expert_turns():
    """The excerpt's expert turns as the model sees them (one window holds the whole excerpt)."""
    from pipeline.stages.distill.windows import render_turn, turns

    tr = excerpt()
    return [
        {"start": t.start, "end": t.end, "name": t.name, "role": t.role, "text": t.text}
        for t in turns(tr)
        if t.role == "expert" and render_turn(t)
    ]


def written(ws: Workspace) -> list[atoms.Atom]:
    return [atoms.read(p) for p in ws.atom_files()]


def assert_grounded(ws: Workspace, atom: atoms.Atom) -> None:
    tr = excerpt()
    for src in atom.meta.sources:
        g = verify_quote(tr, src.speaker, src.start, src.end, src.quote)
        assert g.ok, (src.quote, g.reason)


def test_valid_answer_writes_grounded_atoms_and_logs_cost(ws, server):
    turns = expert_turns()
    answer = {
        "items": [
            item(turns[0], title="Litestream replicates SQLite to S3"),
            item(turns[1], title="Do not run Postgres for tiny apps", kind="pitfall"),
        ]
    }
    answer["items"][0]["related"] = ["Do not run postgres for tiny apps"]
    server.push(
        tool_call("Extraction", answer, usage={"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200})
    )
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert (rep.created, rep.windows, rep.usage.requests) == (2, 1, 1)
    by_title = {a.meta.title: a for a in written(ws)}
    tip = by_title["Litestream replicates SQLite to S3"]
    assert tip.meta.type == "troubleshooting-tip" and tip.meta.status == "draft"
    assert [s.heading for s in tip.sections if s.level == 2] == ["Symptom", "Tip", "FAQ"]
    assert tip.faq and tip.meta.related == ["Do not run Postgres for tiny apps"]
    assert tip.meta.generator.kind == "llm" and tip.meta.generator.prompt == "distill-v1"
    assert tip.meta.generator.tokens_in == 450  # the window's tokens shared by its two items
    assert not atoms.is_human_edited(tip)
    for a in by_title.values():
        assert_grounded(ws, a)
        # timestamps refined from word timings: inside the turn, not the whole turn
        src = a.meta.sources[0]
        turn = next(t for t in turns if t["start"] <= src.start <= t["end"])
        assert src.start > turn["start"] and src.end < turn["end"]
    log = cost_report(ws.state_dir / distill.RUNLOG)
    assert log.totals["tokens_in"] == 900 and log.totals["tokens_out"] == 300
    assert log.interviews[0]["interview"] == "ship-it-59"
    assert {r["atom_id"] for r in log.atoms} == {a.meta.id for a in by_title.values()}


def test_schema_violation_is_reasked_and_counted(ws, server):
    turns = expert_turns()
    bad = item(turns[0], title="Keep one primary database")
    bad["sections"] = [{"heading": "Tip", "text": "Keep one primary."}]  # lacks Symptom
    u = {"prompt_tokens": 500, "completion_tokens": 100, "total_tokens": 600}
    server.push(
        tool_call("Extraction", {"items": [bad]}, usage=u),
        tool_call("Extraction", {"items": [item(turns[0], title="Keep one primary database")]}, usage=u),
    )
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert rep.created == 1
    assert rep.usage.requests == 2 and rep.usage.reasks == 1 and rep.usage.tokens_in == 1000
    assert "lacks section(s) Symptom" in reask_messages(server.requests[1])[0]
    assert cost_report(ws.state_dir / distill.RUNLOG).totals["requests"] == 2


def test_invalid_json_is_reasked(ws, server):
    turns = expert_turns()
    server.push(
        tool_call("Extraction", '{"items": [ {"type": "pitfall", '),
        tool_call("Extraction", {"items": [item(turns[2], title="SQLite as a distributed building block")]}),
    )
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert rep.created == 1 and rep.usage.requests == 2 and rep.usage.reasks == 1


def test_fabricated_quote_is_reasked_then_dropped_never_written(ws, server):
    turns = expert_turns()
    fake = item(
        turns[0], title="Always shard by customer", quote="you should always shard every database by customer id"
    )
    good = item(turns[1], title="Embedded databases are a middle ground")
    for _ in range(3):  # the model never fixes the fabricated quote
        server.push(tool_call("Extraction", {"items": [fake, good]}))
    rep = distill.run(cfg(ws, server, **{"llm.max_retries": 2}), ws, Reporter(), backend="llm")
    assert len(server.requests) == 3
    assert "did not say this" in reask_messages(server.requests[1])[0]
    titles = [a.meta.title for a in written(ws)]
    assert titles == ["Embedded databases are a middle ground"]
    assert len(rep.dropped) == 1 and "Always shard by customer" in rep.dropped[0]
    text = "".join(p.read_text() for p in ws.atoms_dir.rglob("*.md"))
    assert "shard every database" not in text


def test_quote_of_the_interviewer_is_rejected(ws, server):
    tr = excerpt()
    question = next(s for s in tr.segments if s.speaker == "S1" and "SQLite help" in s.text)
    turns = expert_turns()
    stolen = item(turns[0], title="Cell-based architectures", speaker="Gerhard Lazu", quote="how could SQLite help")
    stolen["evidence"][0].update(start=question.start, end=question.end, quote="in that world, how could SQLite help")
    server.push(*[tool_call("Extraction", {"items": [stolen]}) for _ in range(3)])
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert "is the interviewer of this interview" in reask_messages(server.requests[1])[0]
    assert written(ws) == [] and len(rep.dropped) == 1


def test_429_then_success(ws, server):
    server.push(status(429, retry_after=0.01))
    server.responder = grounded_model
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert rep.created >= 3 and rep.usage.retries == 1
    assert all(not atoms.is_human_edited(a) for a in written(ws))


def test_timeout_then_success_and_failed_window_does_not_lose_others(ws, server):
    settings = cfg(ws, server, **{"distill.window_tokens": 500, "llm.timeout_s": 0.4, "llm.http_retries": 1})
    server.responder = grounded_model
    # window 1: times out twice (the retry too) and fails; window 2: slow once, then fine
    server.push(
        slow(1.0, tool_call("Extraction", {"items": []})),
        slow(1.0, tool_call("Extraction", {"items": []})),
        slow(1.0, tool_call("Extraction", {"items": []})),
    )
    rep = distill.run(settings, ws, Reporter(), backend="llm")
    assert rep.windows >= 3 and rep.failed_windows == 1
    assert rep.created >= 1  # the other windows' atoms were written
    assert rep.interviews == 0  # not fresh: a re-run retries the failed window
    server.queue.clear()
    rep2 = distill.run(settings, ws, Reporter(), backend="llm")
    assert rep2.failed_windows == 0 and rep2.cached_windows == rep2.windows - 1
    assert rep2.interviews == 1


def test_human_edits_survive_and_a_proposal_appears(ws, server, kb, monkeypatch):
    server.responder = grounded_model
    settings = cfg(ws, server)
    distill.run(settings, ws, Reporter(), backend="llm")
    path = ws.atom_files()[0]
    edited = path.read_text().replace("## Tip\n\n", "## Tip\n\nREVIEWER NOTE: checked with the team.\n\n")
    path.write_text(edited)

    # the model now says something new about the same item
    def changed_model(request):
        answer = grounded_model(request)
        import json

        args = json.loads(answer.body["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
        for it in args["items"]:
            it["summary"] = "A newer summary."
        return tool_call("Extraction", args)

    server.responder = changed_model
    monkeypatch.setenv("KB_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("KB_LLM_BACKOFF_S", "0.01")
    diff = kb("-w", ws.root, "distill", "--diff", "--model", "gpt-4o-mini-2")
    assert diff.exit_code == 0, diff.stderr
    assert "+summary: A newer summary." in diff.stdout and "(proposed)" in diff.stdout
    assert not list(ws.atoms_dir.rglob("*.proposed.md"))  # --diff writes nothing
    res = kb("-w", ws.root, "distill", "--force", "--model", "gpt-4o-mini-2")
    assert res.exit_code == 0, res.stderr
    assert path.read_text() == edited  # the human edit survives, byte for byte
    proposal = path.with_name(path.stem + ".proposed.md")
    assert proposal.is_file() and "A newer summary." in proposal.read_text()
    assert "edited by a person" in res.stderr
    # atoms nobody touched were updated in place
    others = [p for p in ws.atom_files() if p != path]
    assert others and all("A newer summary." in p.read_text() for p in others)
    cost = kb("-w", ws.root, "cost")
    assert cost.exit_code == 0 and "Total: 3 run(s), 2 request(s)" in cost.stdout and "ship-it-59" in cost.stdout


def test_max_cost_stops_before_exceeding(ws, server):
    server.responder = grounded_model
    settings = cfg(
        ws,
        server,
        **{
            "distill.window_tokens": 500,
            "llm.price_in_per_1m": 10.0,
            "llm.price_out_per_1m": 10.0,
            "llm.max_output_tokens": 1000,
        },
    )
    # each request may cost up to ~ (prompt + 1000 out) * 10 / 1e6 ~ $0.03; allow about two
    with pytest.raises(BudgetExceededError):
        rep = distill.run(settings, ws, Reporter(), backend="llm", max_cost=0.06)
        assert rep.stopped
        raise BudgetExceededError(rep.stopped)
    spent = cost_report(ws.state_dir / distill.RUNLOG).totals["cost_usd"]
    assert 0 < spent <= 0.06
    assert written(ws) == []  # the interview did not finish: no partial atoms


def test_rerun_uses_cache_and_a_correction_resends_only_its_window(ws, server):
    server.responder = grounded_model
    settings = cfg(ws, server, **{"distill.window_tokens": 500})
    first = distill.run(settings, ws, Reporter(), backend="llm")
    assert first.windows >= 3 and first.cached_windows == 0
    sent = len(server.requests)
    again = distill.run(settings, ws, Reporter(), backend="llm")
    assert again.skipped == 1 and len(server.requests) == sent  # fresh: skipped and said
    forced = distill.run(settings, ws, Reporter(), backend="llm", force=True)
    assert forced.cached_windows == forced.windows and len(server.requests) == sent
    assert forced.unchanged == first.created and forced.created == 0
    # a reviewer corrects one word near the end of the transcript
    tr = excerpt()
    last = tr.segments[-1]
    last.text = last.text.replace("primary", "primary node")
    (ws.interview_dir("ship-it-59") / "transcript.json").write_text(tr.model_dump_json(exclude_none=True))
    fixed = distill.run(settings, ws, Reporter(), backend="llm")
    assert fixed.windows - fixed.cached_windows == 1
    assert len(server.requests) == sent + 1


def test_default_backend_is_extractive_without_llm_settings(ws, monkeypatch):
    monkeypatch.delenv("KB_LLM_API_KEY", raising=False)
    assert distill.choose_backend(Settings.load(ws.root), None) == "extractive"
    assert distill.choose_backend(Settings.load(ws.root, **{"llm.base_url": "http://127.0.0.1:9/v1"}), None) == "llm"
    monkeypatch.setenv("KB_LLM_API_KEY", "sk-test")
    assert distill.choose_backend(Settings.load(ws.root), None) == "llm"


def test_excerpt_turns_parse_the_window(ws, server):
    server.responder = grounded_model
    distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    turns = excerpt_turns(server.requests[0])
    assert {t["role"] for t in turns} == {"expert", "interviewer"}
    system = server.requests[0]["messages"][0]["content"]
    assert "error: What it means, Common causes, How to resolve" in system


class InterruptAfter(Reporter):
    """Acts like Ctrl-C after ``n`` windows (the KeyboardInterrupt arrives between windows)."""

    def __init__(self, n: int):
        super().__init__()
        self.n = n

    def progress(self, items, description, total=None):
        for i, x in enumerate(items):
            if i == self.n:
                raise KeyboardInterrupt
            yield x


def test_ctrl_c_leaves_no_half_written_file_and_the_rerun_resumes(ws, server):
    server.responder = grounded_model
    settings = cfg(ws, server, **{"distill.window_tokens": 500})
    with pytest.raises(KeyboardInterrupt):
        distill.run(settings, ws, InterruptAfter(2), backend="llm")
    assert len(server.requests) == 2
    assert written(ws) == []  # atoms are written only once an interview is complete
    assert not [p for p in ws.root.rglob("*.tmp")]
    log = cost_report(ws.state_dir / distill.RUNLOG)
    assert log.runs[0]["status"] == "interrupted" and log.totals["requests"] == 2
    from pipeline.stages.distill.llm import window_budget
    from pipeline.stages.distill.windows import windows

    n = len(windows(excerpt(), window_budget(settings), 2))
    rep = distill.run(settings, ws, Reporter(), backend="llm")
    assert rep.cached_windows == 2 and rep.windows == n > 2 and len(server.requests) == n
    assert rep.created >= 3


def test_llm_atoms_pass_kb_check(ws, server):
    from pipeline.stages import check

    server.responder = grounded_model
    settings = cfg(ws, server)
    distill.run(settings, ws, Reporter(), backend="llm")
    report = check.run(settings, ws, Reporter())
    assert report.files >= 3
    assert [f for f in report.findings if f.severity == "error"] == []
    # a reviewer's edit that breaks a quote is caught by kb check
    path = ws.atom_files()[0]
    text = path.read_text()
    quote = atoms.read(path).meta.sources[0].quote
    path.write_text(text.replace(quote, "SQLite is never a good idea for production systems"))
    report = check.run(settings, ws, Reporter())
    assert any(f.rule == "quote-unverified" for f in report.findings)


def test_items_seen_in_overlapping_windows_become_one_atom(ws, server):
    from pipeline.stages.distill.windows import windows

    server.responder = grounded_model
    settings = cfg(ws, server, **{"distill.window_tokens": 500, "distill.window_overlap_turns": 2})
    wins = windows(excerpt(), 500, 2)
    seen = [t.start for w in wins for t in w.turns if t.role == "expert" and len(t.text.split()) > 20]
    assert len(seen) > len(set(seen))  # some expert turns really are in two windows
    rep = distill.run(settings, ws, Reporter(), backend="llm")
    assert rep.created == len(set(seen))
    for a in written(ws):
        assert len({(s.start, s.quote) for s in a.meta.sources}) == len(a.meta.sources)


def test_item_matching_an_existing_human_atom_becomes_a_proposal(ws, server, kb):
    turns = expert_turns()
    assert kb("-w", ws.root, "new", "troubleshooting-tip", "Litestream replicates SQLite to S3").exit_code == 0
    human = ws.atom_path("troubleshooting-tip", "litestream-replicates-sqlite-to-s3")
    before = human.read_text()
    server.push(tool_call("Extraction", {"items": [item(turns[0], title="Litestream replicates SQLite into S3")]}))
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert rep.proposals == 1 and rep.created == 0
    assert human.read_text() == before
    proposal = human.with_name(human.stem + ".proposed.md")
    assert "Ben Johnson" in proposal.read_text()


def test_config_template_that_does_not_parse_is_reasked(ws, server):
    turns = expert_turns()
    broken = item(turns[0], title="Litestream replica config")
    broken["type"] = "config-template"
    broken["sections"] = [{"heading": "Template", "text": "```yaml\ndbs:\n  - path: /data/db\n   replicas: [\n```"}]
    fixed = dict(
        broken,
        sections=[
            {
                "heading": "Template",
                "text": "```yaml\ndbs:\n  - path: /data/db\n    replicas:\n      - url: s3://bucket/db\n```",
            }
        ],
    )
    server.push(tool_call("Extraction", {"items": [broken]}), tool_call("Extraction", {"items": [fixed]}))
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert "does not parse" in reask_messages(server.requests[1])[0]
    assert rep.created == 1
    atom = written(ws)[0]
    assert atom.meta.type == "config-template" and "s3://bucket/db" in atom.body


def test_atoms_no_longer_produced_are_reported_not_deleted(ws, server):
    turns = expert_turns()
    server.push(
        tool_call(
            "Extraction",
            {
                "items": [
                    item(turns[0], title="Litestream replicates SQLite to S3"),
                    item(turns[1], title="Embedded databases are a middle ground"),
                ]
            },
        )
    )
    distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    server.push(tool_call("Extraction", {"items": [item(turns[0], title="Litestream replicates SQLite to S3")]}))
    rep = Reporter()
    result = distill.run(
        cfg(ws, server, **{"llm.temperature": 0.1, "llm.model": "other-model"}), ws, rep, backend="llm"
    )
    assert result.stale == ["embedded-databases-are-a-middle-ground"]
    assert any("no longer distilled" in m for _, m in rep.lines)
    assert ws.atom_path("troubleshooting-tip", "embedded-databases-are-a-middle-ground").is_file()


def test_golden_llm_atoms(ws, server):
    import os
    import re

    turns = expert_turns()
    answer = {
        "items": [
            item(turns[0], title="Litestream replicates SQLite to S3"),
            item(turns[1], title="Do not run Postgres for tiny apps", kind="pitfall"),
        ]
    }
    server.push(
        tool_call("Extraction", answer, usage={"prompt_tokens": 900, "completion_tokens": 300, "total_tokens": 1200})
    )
    distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    text = "\n".join(f"=== {ws.relative(p)}\n" + p.read_text() for p in ws.atom_files())
    text = re.sub(r"\d{4}-\d{2}-\d{2}", "DATE", text)
    text = re.sub(r"content_hash: [0-9a-f]{64}", "content_hash: HASH", text)
    golden = TESTS_DATA / "distill" / "golden" / "llm-atoms.md"
    if os.environ.get("KB_UPDATE_GOLDEN") == "1":
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_cli_max_cost_exits_1_and_prints_totals(ws, server, kb, monkeypatch):
    server.responder = grounded_model
    monkeypatch.setenv("KB_LLM_BASE_URL", server.base_url)
    monkeypatch.setenv("KB_LLM_PRICE_IN_PER_1M", "10")
    monkeypatch.setenv("KB_DISTILL_WINDOW_TOKENS", "500")
    res = kb("-w", ws.root, "distill", "--max-cost", "0.05")
    assert res.exit_code == 1
    assert "Stopped before exceeding the budget" in res.stderr and "Hint: Raise --max-cost" in res.stderr
    import re

    m = re.search(r"ship-it-59: (\d+) request\(s\), \d+ tokens in, \d+ out, \$([\d.]+)", res.stdout)
    assert m and int(m[1]) >= 1 and float(m[2]) <= 0.05 and "stopped:" in res.stdout
    res = kb("-w", ws.root, "distill", "--max-cost", "5")
    assert res.exit_code == 0 and "1 interview(s) distilled (llm)" in res.stdout
    assert f"{m[1]} from cache" in res.stdout  # the finished windows were not paid for twice


def test_window_that_never_parses_fails_and_is_retried_next_run(ws, server):
    turns = expert_turns()
    server.push(*[tool_call("Extraction", "{not json at all") for _ in range(3)])
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert rep.failed_windows == 1 and rep.interviews == 0 and rep.usage.requests == 3
    assert cost_report(ws.state_dir / distill.RUNLOG).totals["requests"] == 3  # failed attempts are billed too
    server.push(tool_call("Extraction", {"items": [item(turns[0], title="Litestream replicates SQLite to S3")]}))
    rep = distill.run(cfg(ws, server), ws, Reporter(), backend="llm")
    assert rep.created == 1 and rep.cached_windows == 0 and rep.interviews == 1
