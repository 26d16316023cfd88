"""Trustworthy answers over atoms imported from the real Podman + Argo CD docs (tests/data/docs):
answerability beyond cosine, follow-ups, honest "I don't know" (no citations, suggestions apart),
citations of the text used, and ``kb eval`` over the hand-written sets of tests/data/eval.

The figures (flagged shares, recall on the report split) are printed by ``kb eval``; these tests
assert the mechanism on small fixed sets.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from bundle_support import embedder, make_workspace

from pipeline.backends.rerank import Reranker
from pipeline.config import Settings
from pipeline.reporting import Reporter
from tests.paths import TESTS_DATA

DATA = TESTS_DATA
SETS = DATA / "eval"
DOCS_SUBSET = (
    "podman/troubleshooting.md",
    "argocd/faq.md",
    "argocd/operator-manual/high_availability.md",
    "argocd/operator-manual/webhook.md",
)


@pytest.fixture(scope="module")
def real(tmp_path_factory):
    """(workspace, bundle, calibration, term stats) over atoms imported from the Podman guide and three
    Argo CD pages (a subset of tests/data/docs, to keep the test fast; kb eval figures use all of it)."""
    import shutil

    from pipeline.answer.calibrate import calibrate
    from pipeline.answer.index import TermStats
    from pipeline.index.bundle import Bundle
    from pipeline.stages import export, import_docs

    root = tmp_path_factory.mktemp("answers")
    ws = make_workspace(root / "ws", atoms={})
    settings = Settings.load(ws.root)
    docs = root / "docs"
    for page in DOCS_SUBSET:
        (docs / page).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(DATA / "docs" / page, docs / page)
    import_docs.run(settings, ws, Reporter(), docs / "podman", tags=["podman"])
    import_docs.run(settings, ws, Reporter(), docs / "argocd", tags=["argocd"])
    out = ws.dist_dir / "kb-real.duckdb"
    export.run(settings, ws, Reporter(), out=out, embedder=embedder())
    bundle = Bundle.load(out, embedder())
    stats = TermStats.of(bundle)
    yield ws, bundle, calibrate(bundle, settings, stats), stats
    bundle.close()


def ask(real, question, history=None, llm=None):
    from pipeline.answer import answer
    from pipeline.answer.calibrate import DEFAULT_THRESHOLD

    # the mechanism at the default threshold (what the full docs calibrate to; this subset differs)
    ws, bundle, _, stats = real
    return answer(
        bundle, question, Settings.load(ws.root), llm, history=history, threshold=DEFAULT_THRESHOLD, stats=stats
    )


def test_calibration_uses_in_domain_negatives_of_the_bundle(real):
    cal = real[2]
    assert cal.source == "bundle" and cal.negatives >= 20 and cal.positives >= 10
    # the bundle's own whole-atom-held-out questions are mostly refused
    assert cal.unanswerable_flagged >= 0.7


@pytest.mark.parametrize(
    "question, word",
    [
        ("How do I back up Argo CD with Velero?", "Velero"),
        ("How do I manage Argo CD applications and projects with Terraform?", "Terraform"),
        ("How do I give a podman container access to my NVIDIA GPU?", "NVIDIA"),
    ],
)
def test_a_topic_the_docs_never_mention_is_i_dont_know_without_citations(real, question, word):
    result = ask(real, question)
    assert result.uncertain and result.citations == []
    assert word in result.reason and result.answer.startswith("I don't know")
    assert result.suggestions and all(set(s) == {"atom_id", "title"} for s in result.suggestions)
    assert all(s["atom_id"] not in result.answer for s in result.suggestions)  # never cited as the answer


def test_a_paraphrase_whose_atom_stands_out_is_answered_though_its_cosine_is_low(real):
    """Few of its words are the atom's (cosine 0.5), but its atom stands out from every other passage by
    several deviations (``specificity``): it is answered, citing the useradd atom. Cosine and coverage
    alone refused it."""
    result = ask(real, "my image build fills the disk with a huge sparse lastlog file")
    assert not result.uncertain, result.reason
    assert result.citations[0]["atom_id"] == "build-hangs-when-the-dockerfile-contains-the-useradd-command"
    assert result.signals["specificity"] > 3 and result.signals["evidence"] < 0.6


def test_a_paraphrase_whose_atom_s_title_stands_out_is_answered(real):
    """Few of its words are the atom's ("an account with an enormous numeric id" for useradd's large
    UID), but of all atom titles the useradd atom's is nearest by several deviations (``focus``): it is
    answered, citing that atom. Without focus its score (1.15) stayed under what the bundle calibrated."""
    from pipeline.answer.answerability import FOCUS_WEIGHT

    _, bundle, _, stats = real
    assert stats.titles is not None and len(stats.titles.ids) == sum(k == "title" for k in bundle.passage_kinds())
    result = ask(real, "the build gets stuck forever at the step that creates an account with an enormous numeric id")
    assert not result.uncertain, result.reason
    assert result.citations[0]["atom_id"] == "build-hangs-when-the-dockerfile-contains-the-useradd-command"
    sig = result.signals
    assert sig["focus"] > 1 and sig["coverage"] < 0.5 and sig["score"] - FOCUS_WEIGHT * sig["focus"] < 1.23


def test_off_topic_questions_stay_i_dont_know_though_their_best_passage_stands_out(real):
    """Far from every passage, an off-topic question's cosines spread narrowly, so its best one stands out
    by many deviations; ``DOMAIN_MEAN`` takes that away, and trivia, poems and chores are refused. The
    programming questions are nearer the domain (Argo CD is about git): on this small subset at the
    default threshold, "undo the last git commit" gets through (on the full docs, calibrated, it is
    refused and only "Nginx as a reverse proxy with TLS" gets through, as before specificity)."""
    from pipeline.answer.calibrate import OFF_TOPIC

    everyday, programming = OFF_TOPIC[:15], OFF_TOPIC[15:]
    assert [q for q in everyday if not ask(real, q).uncertain] == []
    assert len([q for q in programming if not ask(real, q).uncertain]) <= 1


@pytest.mark.parametrize(
    "question, word, lacks",
    [
        ("how do I run the container as a nonroot user", "nonroot", False),  # "root": the docs have it
        ("how do I run the container as a zorbroot user", "zorbroot", True),  # no part of it is known
    ],
)
def test_a_negated_known_word_is_a_state_not_a_missing_topic(real, question, word, lacks):
    """A negating prefix ("nonroot", "unreachable") on a word the docs have says no more than the word (a
    state of something covered), so it never makes a question a topic the knowledge base lacks."""
    from pipeline.answer.answerability import signals

    _, bundle, _, stats = real
    assert stats.df.get(bundle.tokenize([word])[0][0], 0) == 0  # the word itself is in no passage
    sig = signals(question, bundle.search(question, k=5), bundle, stats)
    assert (word in sig.missing) is lacks


def test_weak_evidence_without_a_missing_word_is_uncertain_too(real):
    result = ask(real, "How do I watch resource usage of podman containers?")
    assert result.uncertain and result.citations == [] and result.reason.startswith("weak evidence")
    assert result.signals["missing"] == []


@pytest.mark.parametrize(
    "question, atom",
    [
        ("ping does not work from inside a rootless container", "rootless-containers-cannot-ping-hosts"),
        ("rootless podman says newuidmap is missing", "newuidmap-missing-when-running-rootless-podman-commands"),
        (
            "lost the argo cd admin password, how do I recover access",
            "faq-i-ve-deleted-corrupted-my-repo-and-can-t-delete-my-app-and-3-more",
        ),
    ],
)
def test_answerable_paraphrases_are_certain_and_cite_the_atom(real, question, atom):
    result = ask(real, question)
    assert not result.uncertain, result.reason
    assert result.citations[0]["atom_id"] == atom and f"[{atom}]" in result.answer
    assert result.answered_question == question and result.suggestions == []


def test_first_source_of_a_citation_is_the_faq_entry_the_text_comes_from(real):
    result = ask(real, "lost the argo cd admin password, how do I recover access")
    c = result.citations[0]
    assert c["passage"] == {"kind": "faq", "heading": "I forgot the admin password, how do I reset it?"}
    assert c["sources"][0]["heading"] == "I forgot the admin password, how do I reset it?"
    assert len(c["sources"]) > 1  # the atom has other sources; the used one comes first


def test_off_topic_requests_get_the_same_honest_answer(real):
    for q in ("Write me a poem about the sea.", "Who won the football world cup in 2014?"):
        result = ask(real, q)
        assert result.uncertain and result.citations == []


def test_an_elliptic_follow_up_uses_the_conversation_offline(real):
    first = ask(real, "podman build hangs at a useradd step")
    atom = "build-hangs-when-the-dockerfile-contains-the-useradd-command"
    assert first.citations[0]["atom_id"] == atom
    history = [
        {"role": "user", "content": "podman build hangs at a useradd step"},
        {"role": "assistant", "content": first.answer},  # cites it as [atom-id]
    ]
    alone = ask(real, "how do I fix that?")
    assert alone.uncertain  # searched alone it means nothing
    follow = ask(real, "how do I fix that?", history)
    assert not follow.uncertain and follow.citations[0]["atom_id"] == atom
    assert follow.answered_question == "how do I fix that? (about: podman build hangs at a useradd step)"


def test_a_follow_up_naming_a_new_thing_searches_with_the_earlier_turn(real):
    history = [
        {"role": "user", "content": "How do I scale the Argo CD repo server?"},
        {"role": "assistant", "content": "…"},
    ]
    result = ask(real, "and the application controller?", history)
    assert result.citations and result.citations[0]["atom_id"].startswith("scaling-up-argocd-application-controller")


def test_with_an_llm_the_follow_up_is_rewritten_by_one_counted_request(real):
    from pipeline.backends.llm import make_client
    from tests.fakes.openai_server import OpenAIServer, text

    ws = real[0]
    standalone = "How do I fix podman build hanging at a useradd step?"
    atom = "build-hangs-when-the-dockerfile-contains-the-useradd-command"
    with OpenAIServer() as server:
        server.push(text(standalone, usage={"prompt_tokens": 40, "completion_tokens": 9, "total_tokens": 49}))
        server.push(
            text(
                f"Use useradd --no-log-init [{atom}].",
                usage={"prompt_tokens": 300, "completion_tokens": 12, "total_tokens": 312},
            )
        )
        settings = Settings.load(ws.root, **{"llm.base_url": server.base_url, "llm.model": "fake"})
        history = [
            {"role": "user", "content": "podman build hangs at a useradd step"},
            {"role": "assistant", "content": "…"},
        ]
        result = ask(real, "how do I fix that?", history, llm=make_client(settings))
        sent = [r["messages"] for r in server.requests]
    assert len(sent) == 2
    assert "standalone question" in sent[0][0]["content"] and "useradd" in sent[0][1]["content"]
    assert standalone in sent[1][-1]["content"]  # the rewrite is what the answer was asked
    assert result.answered_question == standalone and result.llm_requests == 2
    assert result.tokens_in == 340 and result.tokens_out == 21
    assert not result.uncertain and result.citations[0]["atom_id"] == atom


#: An answerable paraphrase (an HTTP registry, "http: server gave HTTP response to HTTPS client") that the
#: signals alone refuse for weak evidence. (The lastlog paraphrase this once was is answered offline since
#: the specificity signal.)
WEAK = "my registry has no encryption and uploading to it is rejected"


def _weak(real):
    """WEAK's offline verdict: refused for weak evidence only, within the LLM band of the threshold."""
    from pipeline.answer.answerability import judge, signals
    from pipeline.answer.calibrate import DEFAULT_THRESHOLD
    from pipeline.answer.core import llm_may_judge

    ws, bundle, _, stats = real
    hits = bundle.search(WEAK, k=5)
    sig = signals(WEAK, hits, bundle, stats)
    assert judge(sig, DEFAULT_THRESHOLD).uncertain and not sig.missing
    assert llm_may_judge(sig, DEFAULT_THRESHOLD, Settings.load(ws.root))
    return hits


def test_with_an_llm_weak_evidence_is_for_the_model_to_judge(real):
    """What the signals find only weak goes to the model with its atoms: a grounded answer is certain and
    cites the atom; "I don't know" stays uncertain without citations. One counted request each."""
    from pipeline.backends.llm import make_client
    from tests.fakes.openai_server import OpenAIServer, text

    hits = _weak(real)
    atom = hits[0].atom_id
    with OpenAIServer() as server:
        server.push(text(f"Mark the registry insecure in registries.conf [{atom}]."), text("I don't know."))
        settings = Settings.load(real[0].root, **{"llm.base_url": server.base_url, "llm.model": "fake"})
        llm = make_client(settings)
        yes, no = ask(real, WEAK, llm=llm), ask(real, WEAK, llm=llm)
        sent = [r["messages"][-1]["content"] for r in server.requests]
    assert len(sent) == 2 and all(WEAK in m and f"[{atom}]" in m for m in sent)  # the atoms were shown
    assert not yes.uncertain and yes.citations[0]["atom_id"] == atom and yes.llm_requests == 1
    assert yes.signals["judged_by"] == "llm"
    assert no.uncertain and no.citations == [] and no.answer.startswith("I don't know")
    assert "weak evidence" in no.reason and no.llm_requests == 1


def test_with_an_llm_a_missing_topic_or_a_zero_band_asks_nothing(real):
    from pipeline.backends.llm import make_client
    from tests.fakes.openai_server import OpenAIServer

    _weak(real)
    with OpenAIServer() as server:  # nothing queued: any request would be answered 500
        ws = real[0]
        llm = make_client(Settings.load(ws.root, **{"llm.base_url": server.base_url, "llm.model": "fake"}))
        missing = ask(real, "How do I back up Argo CD with Velero?", llm=llm)
        from pipeline.answer import answer
        from pipeline.answer.calibrate import DEFAULT_THRESHOLD

        off = Settings.load(
            ws.root, **{"llm.base_url": server.base_url, "llm.model": "fake", "serve.llm_judge_band": 0.0}
        )
        weak = answer(real[1], WEAK, off, make_client(off), threshold=DEFAULT_THRESHOLD, stats=real[3])
        poem = ask(real, "Write me a poem about the sea.", llm=llm)  # far below the band
        assert server.requests == []
    assert missing.uncertain and "Velero" in missing.reason and missing.llm_requests == 0
    assert weak.uncertain and weak.citations == [] and weak.llm_requests == 0
    assert poem.uncertain and poem.llm_requests == 0


def test_kb_eval_llm_judges_through_the_model_and_counts_requests(kb, real, monkeypatch, tmp_path):
    from pipeline.answer.calibrate import DEFAULT_THRESHOLD
    from tests.fakes.openai_server import OpenAIServer, text

    ws, bundle, _, _ = real
    monkeypatch.chdir(ws.root)
    atom = _weak(real)[0].atom_id
    rows = [
        {"question": WEAK, "expected": [atom]},
        {"question": "How do I back up Argo CD with Velero?", "expected": [], "absent": ["velero"]},
    ]
    questions = tmp_path / "q.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    monkeypatch.setenv(
        "KB_SERVE_UNCERTAIN_BELOW", str(DEFAULT_THRESHOLD)
    )  # the point _weak checked (not this subset's)
    offline = kb("eval", "--bundle", bundle.path, "--questions", questions, "--k", "5", "--format", "json")
    assert offline.exit_code == 0, offline.stderr
    assert json.loads(offline.stdout)["answerable_flagged"] == 1.0  # the signals alone refuse WEAK
    with OpenAIServer(
        responder=lambda body: text(
            f"See [{atom}].", usage={"prompt_tokens": 90, "completion_tokens": 5, "total_tokens": 95}
        )
    ) as server:
        monkeypatch.setenv("KB_LLM_BASE_URL", server.base_url)
        r = kb("eval", "--bundle", bundle.path, "--questions", questions, "--k", "5", "--format", "json", "--llm")
        sent = len(server.requests)
        held = kb("eval", "--bundle", bundle.path, "--holdout", "--llm")  # the model would see the held-out pair
        assert held.exit_code == 1 and "--holdout" in held.stderr and len(server.requests) == sent
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["judge"] == "llm" and data["llm_requests"] == sent == 1  # Velero never reached the model
    assert data["tokens_in"] == 90 and data["tokens_out"] == 5
    assert data["answerable_flagged"] == 0.0 and data["unanswerable_flagged"] == 1.0
    monkeypatch.delenv("KB_LLM_BASE_URL")
    none = kb("eval", "--bundle", bundle.path, "--questions", questions, "--llm")
    assert none.exit_code == 1 and "No LLM endpoint is configured" in none.stderr and "drop --llm" in none.stderr


def _subset(name: str, bundle, tmp_path) -> tuple[Path, int, int]:
    """The rows of a set whose expected atoms this (subset) bundle has, unanswerable ones included."""
    rows = [json.loads(line) for line in (SETS / name).read_text(encoding="utf-8").splitlines() if line.strip()]
    kept = [r for r in rows if not r["expected"] or any(bundle.atom(a) for a in r["expected"])]
    out = tmp_path / name
    out.write_text("".join(json.dumps(r) + "\n" for r in kept), encoding="utf-8")
    return out, sum(1 for r in kept if r["expected"]), sum(1 for r in kept if not r["expected"])


def test_kb_eval_reports_flagged_shares_and_conversation_recall(kb, real, monkeypatch, tmp_path):
    ws, bundle, _, _ = real
    monkeypatch.chdir(ws.root)
    questions, answerable, unanswerable = _subset("dev.jsonl", bundle, tmp_path)
    talks, n_talks, _ = _subset("conversations-dev.jsonl", bundle, tmp_path)
    r = kb(
        "eval", "--bundle", bundle.path, "--questions", questions,
        "--conversations", talks, "--k", "5", "--format", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.stderr
    data = json.loads(r.stdout)
    assert data["unanswerable"] == unanswerable == 22 and data["questions"] == answerable >= 10
    assert data["conversations"] == n_talks >= 3
    assert data["unanswerable_flagged"] > 0.5 > data["answerable_flagged"]
    flagged = set(data["wrongly_flagged"])  # the refusals that kept a wrong answer away are counted apart
    assert data["answerable_flagged_unretrieved"] == len(flagged & set(data["misses"]))
    assert 0 <= data["conversation_recall"]["@5"] <= 1 and data["recall"]["@5"] > 0.5
    table = kb("eval", "--bundle", bundle.path, "--questions", questions, "--k", "5")
    assert "unanswerable flagged uncertain (22)" in table.stdout and "answerable wrongly flagged" in table.stdout
    assert "no answer in the top 5 either" in table.stdout


def test_timestamps_display_floored_and_link_exact():
    from pipeline.textio import clock, exact_seconds
    from pipeline.transcripts.markdown import stamp

    assert clock(754.9) == "00:12:34" == stamp(754.9) and clock(3600) == "01:00:00" and clock(None) == "00:00:00"
    assert exact_seconds(754.2) == "754.2" and exact_seconds(12) == "12" and exact_seconds(0.125) == "0.125"


# ---------------------------------------------------------------------------------------------
# the same over HTTP (/v1/ask, OpenAI-compatible chat, streaming) and the CLI


@pytest.fixture(scope="module")
def served(real):
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    from pipeline.service.app import create_app
    from tests.service.test_service import Server

    ws, bundle, _, _ = real
    with Server(create_app(bundle.path, Settings.load(ws.root), embedder=embedder())) as srv:
        yield srv


UNANSWERABLE = "How do I back up Argo CD with Velero?"


def test_http_ask_with_history_and_uncertain_without_citations(served):
    import httpx

    with httpx.Client(base_url=served.url, timeout=60) as c:
        body = c.post("/v1/ask", json={"question": UNANSWERABLE}).json()
        assert body["uncertain"] is True and body["citations"] == [] and body["suggestions"]
        history = [
            {"role": "user", "content": "podman build hangs at a useradd step"},
            {"role": "assistant", "content": "…"},
        ]
        body = c.post("/v1/ask", json={"question": "how do I fix that?", "history": history}).json()
        assert body["uncertain"] is False and body["answered_question"].endswith(
            "(about: podman build hangs at a useradd step)"
        )
        assert body["citations"][0]["atom_id"] == "build-hangs-when-the-dockerfile-contains-the-useradd-command"
        bad = c.post("/v1/ask", json={"question": "x", "history": [{"content": "no role"}]})
        assert bad.status_code == 422


def test_openai_chat_uncertain_has_no_citations_plain_and_streaming(served):
    openai = pytest.importorskip("openai")
    oc = openai.OpenAI(base_url=served.url + "/v1", api_key="x", max_retries=0)
    done = oc.chat.completions.create(model="kb", messages=[{"role": "user", "content": UNANSWERABLE}])
    extra = done.model_extra
    assert extra["uncertain"] is True and extra["citations"] == [] and extra["suggestions"]
    content = done.choices[0].message.content
    assert content.startswith(f"Answering: {UNANSWERABLE}\n") and "Sources:" not in content and "[" not in content
    chunks = list(
        oc.chat.completions.create(model="kb", messages=[{"role": "user", "content": UNANSWERABLE}], stream=True)
    )
    last = [c for c in chunks if c.choices and c.choices[0].finish_reason][-1].model_extra
    assert last["uncertain"] is True and last["citations"] == [] and last["suggestions"] == extra["suggestions"]
    # a follow-up over messages: the earlier turns are the conversation
    follow = oc.chat.completions.create(
        model="kb",
        messages=[
            {"role": "user", "content": "podman build hangs at a useradd step"},
            {
                "role": "assistant",
                "content": "Use --no-log-init [build-hangs-when-the-dockerfile-contains-the-useradd-command]",
            },
            {"role": "user", "content": "how do I fix that?"},
        ],
    )
    assert (
        follow.model_extra["citations"][0]["atom_id"] == "build-hangs-when-the-dockerfile-contains-the-useradd-command"
    )
    assert follow.choices[0].message.content.startswith("Answering: how do I fix that? (about: podman build")


def test_cli_ask_uncertain_lists_suggestions_not_citations_and_follow_up(kb, real, monkeypatch):
    ws, bundle, _, _ = real
    monkeypatch.chdir(ws.root)
    r = kb("ask", UNANSWERABLE, "--bundle", bundle.path)
    assert r.exit_code == 0, r.stderr
    assert r.stdout.startswith(f"Answering: {UNANSWERABLE}") and "Uncertain: YES" in r.stdout
    assert "Citations:" not in r.stdout and "Closest atoms (suggestions, not an answer):" in r.stdout
    first = kb("ask", "podman build hangs at a useradd step", "--bundle", bundle.path)
    assert "Citations:" in first.stdout and (ws.root / ".kb" / "chat" / "last.json").is_file()
    follow = kb("ask", "how do I fix that?", "--follow-up", "--bundle", bundle.path, "--format", "json")
    data = json.loads(follow.stdout)
    assert data["answered_question"] == "how do I fix that? (about: podman build hangs at a useradd step)"
    assert data["citations"][0]["atom_id"] == "build-hangs-when-the-dockerfile-contains-the-useradd-command"


def test_kb_chat_keeps_the_conversation_in_memory(kb, real, monkeypatch):
    import io

    ws, bundle, _, _ = real
    monkeypatch.chdir(ws.root)
    monkeypatch.setattr("sys.stdin", io.StringIO("podman build hangs at a useradd step\nhow do I fix that?\n\n"))
    r = kb("chat", "--bundle", bundle.path)
    assert r.exit_code == 0, r.stderr
    assert "Answering: how do I fix that? (about: podman build hangs at a useradd step)" in r.stdout
    assert r.stdout.count("[build-hangs-when-the-dockerfile-contains-the-useradd-command]") >= 2


# --------------------------------------------------------------------------------------------
# a configured cross-encoder (serve.reranker)


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory):
    """A relevance cross-encoder saved as sentence-transformers saves one (a BERT with one output and
    MiniLM's tokenizer), with random weights: no cross-encoder weights are on this machine, and none may
    be downloaded. The real loading and scoring code runs; what it scores is noise, so these tests check
    that its probabilities order the hits and decide, not that they are right."""
    pytest.importorskip("sentence_transformers", reason="needs the embed extra (sentence-transformers)")
    from tests.rerank_support import save_random_cross_encoder

    folder = tmp_path_factory.mktemp("rerank") / "tiny-cross-encoder"
    return save_random_cross_encoder(folder, hidden=32, layers=2, heads=2, intermediate=64, init_range=0.5)


def _probabilities(folder, question, hits):
    """The model's own probabilities for (question, atom title + passage), outside kb."""
    from sentence_transformers import CrossEncoder

    model = CrossEncoder(str(folder), device="cpu", local_files_only=True)
    return model.predict([(question, f"{h.title}\n{h.passage['text']}".strip()) for h in hits])


def test_a_configured_reranker_orders_the_hits_and_its_probability_decides(real, cross_encoder):
    from pipeline.answer import answer

    ws, bundle, _, stats = real
    settings = Settings.load(ws.root, **{"serve.reranker": str(cross_encoder)})
    question = "ping does not work from inside a rootless container"
    found = bundle.search(question, k=settings.serve.rerank_depth)
    probs = _probabilities(cross_encoder, question, found)
    best = int(probs.argmax())
    assert sorted(probs)[-1] - sorted(probs)[-2] > 1e-4  # one clear first, so the order is the model's

    said = answer(bundle, question, settings, threshold=float(probs[best]) - 1e-3, stats=stats)
    assert not said.uncertain, said.reason
    assert said.citations[0]["atom_id"] == found[best].atom_id
    assert said.signals["rerank"] == pytest.approx(float(probs[best]), abs=1e-4)
    assert said.signals["score"] == said.signals["rerank"]

    refused = answer(bundle, question, settings, threshold=float(probs[best]) + 1e-3, stats=stats)
    assert refused.uncertain and refused.citations == [] and "reranker" in refused.reason
    assert refused.suggestions[0]["atom_id"] == found[best].atom_id  # the closest, listed apart


def test_without_a_reranker_the_answer_json_has_no_rerank_field(real):
    assert "rerank" not in ask(real, "ping does not work from inside a rootless container").signals


def test_calibration_with_a_reranker_is_on_its_probability_scale(real, cross_encoder):
    from pipeline.answer.calibrate import calibrate
    from pipeline.backends.rerank import load_reranker

    ws, bundle, _, stats = real
    settings = Settings.load(ws.root, **{"serve.reranker": str(cross_encoder)})
    reranker = load_reranker(settings)
    before = reranker.calls, reranker.pairs_scored
    cal = calibrate(bundle, settings, stats)
    assert cal.scale == "reranker" and cal.positives and cal.negatives
    # this noise model tells no question from another: the bundle's best is to refuse every one, so the
    # threshold is the model's even odds, not one above every probability
    assert (cal.source, cal.threshold) == ("default", 0.5)
    assert reranker.calls == before[0] + 1 and reranker.pairs_scored - before[1] > cal.positives  # one batch
    assert calibrate(bundle, Settings.load(ws.root), stats).scale == "signals"


def test_kb_ask_with_a_reranker_and_with_a_path_that_is_no_model(kb, real, cross_encoder, monkeypatch, tmp_path):
    ws, bundle, _, _ = real
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("KB_SERVE_RERANKER", str(cross_encoder))
    r = kb("ask", "ping does not work from inside a rootless container", "--bundle", bundle.path, "--format", "json")
    assert r.exit_code == 0, r.stderr
    signals = json.loads(r.stdout)["signals"]
    assert 0.0 <= signals["rerank"] <= 1.0 and signals["score"] == signals["rerank"]  # the reranker decided

    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("KB_SERVE_RERANKER", str(tmp_path / "empty"))
    r = kb("ask", "ping does not work from inside a rootless container", "--bundle", bundle.path)
    assert r.exit_code == 1
    assert "serve.reranker" in r.stderr and "not a model directory" in r.stderr
    assert "cross-encoder/ms-marco-MiniLM-L-6-v2" in r.stderr  # the hint says how to get one


class OverlapReranker(Reranker):
    """A reranker plug-in registered like any backend: the share of the question's words the text has.
    Unlike the noise model above it tells an atom's own answer from another's, as a real one does."""

    backend = "overlap"

    def __init__(self, location: str, *, threads: int = 1):
        super().__init__()

    def _score(self, pairs):
        def words(text):
            return {w for w in text.lower().split() if len(w) > 3}

        return [len(words(q) & words(t)) / max(1, len(words(q))) for q, t in pairs]


def test_a_reranker_plug_in_is_calibrated_between_the_bundle_s_own_questions(real, monkeypatch):
    from pipeline.answer.calibrate import calibrate, calibration_signals
    from pipeline.backends import registry
    from pipeline.backends.rerank import load_reranker

    monkeypatch.setitem(registry._ENTRIES["rerank"], "overlap", OverlapReranker)
    ws, bundle, _, stats = real
    settings = Settings.load(ws.root, **{"serve.reranker": "unused", "serve.rerank_backend": "overlap"})
    assert load_reranker(settings).backend == "overlap"
    cal = calibrate(bundle, settings, stats)
    assert (cal.scale, cal.source) == ("reranker", "bundle")
    pos, neg = calibration_signals(bundle, stats, reranker=load_reranker(settings), depth=10)
    seen = [s.rerank for s in pos + neg if not s.missing]
    assert min(seen) < cal.threshold <= max(seen)
    # the bundle's held-out answers score higher than what other atoms offer: better than refusing all
    assert cal.answerable_flagged < 1.0 and cal.unanswerable_flagged > 0.0


def test_kb_serve_with_a_reranker_answers_on_its_scale_over_http(real, cross_encoder):
    """``kb serve`` loads the reranker and calibrates on its scale at start; /healthz says which scale."""
    pytest.importorskip("fastapi")
    pytest.importorskip("uvicorn")
    import httpx

    from pipeline.service.app import create_app
    from tests.service.test_service import Server

    ws, bundle, _, _ = real
    settings = Settings.load(ws.root, **{"serve.reranker": str(cross_encoder), "serve.uncertain_below": 0.0})
    with Server(create_app(bundle.path, settings, embedder=embedder())) as srv:
        health = httpx.get(f"{srv.url}/healthz").json()
        assert health["bundle"]["uncertain_below"] == {
            "threshold": 0.0, "source": "setting", "accuracy": None, "positives": 0, "negatives": 0,
            "answerable_flagged": None, "unanswerable_flagged": None, "scale": "reranker",
        }  # fmt: skip
        question = "ping does not work from inside a rootless container"
        said = httpx.post(f"{srv.url}/v1/ask", json={"question": question}).json()
        found = bundle.search(question, k=settings.serve.rerank_depth)
        best = found[int(_probabilities(cross_encoder, question, found).argmax())]
        assert said["uncertain"] is False and said["citations"][0]["atom_id"] == best.atom_id


def test_a_bundle_s_calibration_is_kept_between_runs_under_its_checksum(kb, real, monkeypatch, tmp_path):
    """``kb ask`` loads the bundle anew each run; its calibration is measured once per bundle, answering
    code and models, and kept (``serve.calibration_cache``)."""
    import pipeline.answer.calibrate as cal_module
    from pipeline.answer.calibrate import cached_path, calibrate

    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    ws, bundle, measured, stats = real
    settings = Settings.load(ws.root)  # on by default
    path = cached_path(bundle, settings, None)
    assert path is not None and path.parent == tmp_path / "cache" / "calibration" and not path.exists()
    assert calibrate(bundle, settings, stats) == measured and path.is_file()

    def never(*args, **kwargs):
        raise AssertionError("measured again")

    with monkeypatch.context() as m:
        m.setattr(cal_module, "calibration_signals", never)
        assert calibrate(bundle, settings, stats) == measured  # read back, nothing measured
    path.write_text("{")  # half-written by a crash: measured again and replaced
    assert (
        calibrate(bundle, settings, stats) == measured
        and json.loads(path.read_text())["threshold"] == measured.threshold
    )

    with monkeypatch.context() as m:  # another constant, another calibration
        m.setattr("pipeline.answer.answerability.COVERAGE_WEIGHT", 0.6)
        assert cached_path(bundle, settings, None) != path
    assert cached_path(bundle, Settings.load(ws.root, **{"serve.calibration_cache": False}), None) is None

    path.unlink()
    monkeypatch.chdir(ws.root)
    assert kb("ask", "podman build hangs at a useradd step", "--bundle", bundle.path).exit_code == 0
    assert len(list(path.parent.glob("*.json"))) == 1  # its own key: kb ask encodes as kb serve does


def test_kb_eval_judges_and_ranks_as_kb_serve_does_with_a_reranker(kb, real, monkeypatch, tmp_path):
    from pipeline.backends import registry

    ws, bundle, _, _ = real
    monkeypatch.chdir(ws.root)
    questions, _, unanswerable = _subset("dev.jsonl", bundle, tmp_path)
    args = ("eval", "--bundle", bundle.path, "--questions", questions, "--k", "5", "--format", "json")
    plain = json.loads(kb(*args).stdout)
    monkeypatch.setitem(registry._ENTRIES["rerank"], "overlap", OverlapReranker)
    monkeypatch.setenv("KB_SERVE_RERANKER", "unused")
    monkeypatch.setenv("KB_SERVE_RERANK_BACKEND", "overlap")
    r = kb(*args)
    assert r.exit_code == 0, r.stderr
    ranked = json.loads(r.stdout)
    assert plain["threshold"] > 1.0 >= ranked["threshold"] > 0.0  # the reranker's scale, calibrated
    # the reranker reorders the top 5 it reads, so what is in them (recall@5) is the search's
    assert ranked["recall"]["@5"] == plain["recall"]["@5"] and ranked["unanswerable"] == unanswerable
    assert ranked["unanswerable_flagged"] > 0.0


def test_the_cli_encodes_questions_with_the_encoder_kb_serve_uses(real):
    """kb ask, kb chat, kb eval and the tools open bundles with ``open_bundle``: onnx when onnxruntime is
    installed (as ``kb serve``), so both judge a question on the same vector; the setting still wins."""
    pytest.importorskip("onnxruntime", reason="needs the onnx extra (onnxruntime)")
    from pipeline.answer.bundle import open_bundle

    ws, bundle, _, _ = real
    for encoder, backend in (("auto", "onnx"), ("sentence-transformers", "sentence-transformers")):
        opened = open_bundle(bundle.path, Settings.load(ws.root, **{"serve.encoder": encoder}))
        try:
            assert opened.embedder.backend == backend
            vector = opened.embedder.encode(["podman build hangs at a useradd step"])[0]
            assert float(vector @ bundle.embedder.encode(["podman build hangs at a useradd step"])[0]) > 0.9999
        finally:
            opened.close()


def test_a_reranker_that_ships_raw_logits_still_gives_probabilities(cross_encoder, tmp_path):
    """Some rerankers name no activation but the identity (raw logits): kb applies its own sigmoid, so a
    threshold means the same for every model."""
    import shutil

    import numpy as np
    from sentence_transformers import CrossEncoder

    from pipeline.backends.rerank.cross_encoder import CrossEncoderReranker

    folder = tmp_path / "raw-logits"
    shutil.copytree(cross_encoder, folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.linear.Identity"}
    (folder / "config.json").write_text(json.dumps(config), encoding="utf-8")
    texts = ["Rootless containers cannot ping hosts", "Sync fails with context deadline exceeded"]
    raw = CrossEncoder(str(folder), device="cpu", local_files_only=True).predict([("ping fails", t) for t in texts])
    assert (np.abs(raw) > 1).any()  # logits, not probabilities
    assert CrossEncoderReranker(str(folder)).score("ping fails", texts) == pytest.approx(1 / (1 + np.exp(-raw)))


def test_rerank_reorders_only_the_atoms_it_reads_and_keeps_the_rest_in_search_order():
    from types import SimpleNamespace

    from pipeline.answer.rerank import rerank

    def hit(atom, text):
        return SimpleNamespace(atom_id=atom, title="", passage={"text": text})

    hits = [hit("a", "nothing here"), hit("b", "rootless ping fails"), hit("c", "rootless ping"), hit("d", "x")]
    ordered, best = rerank(OverlapReranker("unused"), "rootless ping fails", hits, 2)
    assert [h.atom_id for h in ordered] == ["b", "a", "c", "d"] and best == 1.0  # c is not read
    kept, first = rerank(OverlapReranker("unused"), "rootless ping fails", hits, 2, keep_order=True)
    assert kept == hits and first == 0.0  # an elliptic follow-up: only its cited first atom is scored
    assert rerank(None, "rootless ping fails", hits, 2) == (hits, None)
