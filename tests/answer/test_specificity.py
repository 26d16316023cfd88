"""The specificity signal: how far a question's best passage stands out from its cosines to all passages,
computed from the passage vectors' moments (``VectorMoments``) instead of a scan."""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.answer.answerability import DOMAIN_MEAN, specificity
from pipeline.answer.index import VectorMoments


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


class _Stats:
    def __init__(self, moments):
        self.moments = moments


def test_moments_give_the_mean_and_spread_of_a_question_s_cosines_without_a_scan():
    rng = np.random.default_rng(7)
    vectors = _unit(rng.standard_normal((20000, 16)) + 0.5).astype(np.float32)
    q = _unit(rng.standard_normal((1, 16)) + 0.3)[0]
    mean, std = VectorMoments.of(vectors).spread(q)
    cos = vectors.astype(np.float64) @ q
    assert mean == pytest.approx(cos.mean(), abs=1e-6)
    assert std == pytest.approx(cos.std(), rel=0.01)  # shrinkage is dim/(n+dim): negligible here


def test_moments_are_summed_in_chunks_with_the_same_result(monkeypatch):
    import pipeline.answer.index as index

    vectors = _unit(np.random.default_rng(1).standard_normal((1000, 8))).astype(np.float32)
    whole = VectorMoments.of(vectors)
    monkeypatch.setattr(index, "MOMENT_CHUNK", 64)
    chunked = VectorMoments.of(vectors)
    assert np.allclose(whole.mean, chunked.mean) and np.allclose(whole.cov, chunked.cov, atol=1e-6)


def test_few_passages_leave_no_direction_without_spread():
    """Ten passages in 64 dimensions: the raw covariance is singular, so a question off their span would
    have a vanishing deviation and any cosine would "stand out"; shrinkage keeps the deviation sane."""
    rng = np.random.default_rng(3)
    vectors = _unit(rng.standard_normal((10, 64)))
    off_span = rng.standard_normal(64)
    off_span -= vectors.T @ np.linalg.lstsq(vectors.T, off_span, rcond=None)[0]
    _, std = VectorMoments.of(vectors).spread(_unit(off_span[None])[0])
    assert std > 0.05
    assert VectorMoments.of(vectors[:1]) is None


def test_a_best_passage_standing_out_scores_higher_than_one_among_many_alike():
    """The same best cosine means more for a question whose other cosines are low and alike than for one
    near a crowd of passages (an in-domain question near many, answered by none in particular); and it
    is the z-score a scan of every passage's cosine would give."""
    rng = np.random.default_rng(5)
    passages = _unit(rng.standard_normal((3000, 32)) + 0.3)
    stats = _Stats(VectorMoments.of(passages))
    crowd = _unit(passages[:300].mean(axis=0)[None])[0]  # where the passages are densest
    aside = _unit((crowd + 2.5 * _unit(rng.standard_normal((1, 32)))[0])[None])[0]
    for q in (crowd, aside):
        cos = passages @ q
        assert cos.mean() > DOMAIN_MEAN
        assert specificity(0.9, q, stats) == pytest.approx((0.9 - cos.mean()) / cos.std(), rel=0.02)
    assert specificity(0.9, aside, stats) > specificity(0.9, crowd, stats) > 0


def test_a_question_far_from_the_whole_knowledge_base_gets_no_specificity():
    """Its cosines spread narrowly around zero, so its best one stands out by many deviations without
    being near: below ``DOMAIN_MEAN`` of mean cosine the signal fades, at or below zero it is gone."""
    rng = np.random.default_rng(9)
    passages = _unit(rng.standard_normal((400, 16)) + 2.0)
    stats = _Stats(VectorMoments.of(passages))
    mean_dir = _unit(passages.mean(axis=0)[None])[0]
    away = -mean_dir
    assert stats.moments.spread(away)[0] < 0 and specificity(0.3, away, stats) == 0.0
    near = mean_dir
    assert stats.moments.spread(near)[0] > DOMAIN_MEAN and specificity(1.0, near, stats) > 0
    assert specificity(0.5, near, _Stats(None)) == 0.0 and specificity(0.5, None, stats) == 0.0


def test_specificity_lends_nothing_to_an_atom_lacking_the_question_s_topic_words():
    from pipeline.answer.answerability import SPECIFICITY_COVERAGE, Signals

    weak = Signals(evidence=0.5, coverage=0.15, specificity=5.2)
    full = Signals(evidence=0.5, coverage=SPECIFICITY_COVERAGE, specificity=5.2)
    bare = Signals(evidence=0.5, coverage=0.15, specificity=0.0)
    # in proportion to coverage: half the coverage needed, half of what specificity would add
    assert weak.score() - bare.score() == pytest.approx((full.score() - bare.score() - 0.5 * 0.15) / 2, abs=1e-9)


@pytest.fixture(scope="module")
def demo_bundle(tmp_path_factory):
    """The bundle of the demo's shipped sample: three real Argo CD pages (samples/docs) and kb's own
    runbooks (samples/atoms), a small knowledge base of mixed topics."""
    import shutil

    from bundle_support import embedder, make_workspace

    from pipeline.config import Settings
    from pipeline.index.bundle import Bundle
    from pipeline.reporting import Reporter
    from pipeline.stages import export, import_docs
    from tests.paths import REPO_ROOT

    root = tmp_path_factory.mktemp("demo")
    ws = make_workspace(root / "ws", atoms={})
    shutil.copytree(REPO_ROOT / "samples" / "atoms", ws.root / "atoms", dirs_exist_ok=True)
    settings = Settings.load(ws.root)
    import_docs.run(settings, ws, Reporter(), REPO_ROOT / "samples" / "docs", tags=["sample-docs"])
    out = ws.dist_dir / "kb-demo.duckdb"
    export.run(settings, ws, Reporter(), out=out, embedder=embedder())
    bundle = Bundle.load(out, embedder())
    yield settings, bundle
    bundle.close()


@pytest.mark.parametrize(
    "question, uncertain",
    [
        # near the sync FAQ (cosine 0.5) and standing out among the few Argo CD passages, but the
        # atom has none of "context deadline exceeded": no answer (the demo asks it)
        ("What does context deadline exceeded mean during a sync?", True),
        ("How do I terminate a running sync?", False),
        ("x509: certificate signed by unknown authority from the argocd cli", False),
    ],
)
def test_on_a_small_bundle_of_mixed_topics_specificity_does_not_carry_a_missing_topic(demo_bundle, question, uncertain):
    from pipeline.answer import answer
    from pipeline.answer.calibrate import calibrate
    from pipeline.answer.index import TermStats

    settings, bundle = demo_bundle
    stats = TermStats.of(bundle)
    said = answer(bundle, question, settings, threshold=calibrate(bundle, settings, stats).threshold, stats=stats)
    assert said.uncertain is uncertain, said.reason
    assert bool(said.citations) is not uncertain


@pytest.mark.parametrize(
    "first, refused",
    [
        # the demo's exchange: "I don't know", then "how do I fix it?", whose generic words lifted the
        # combined search over the threshold (1.06 vs 1.05) to the unrelated polling-interval passage
        ("What does context deadline exceeded mean during a sync?", True),
        ("How do I terminate a running sync?", False),
    ],
)
def test_an_elliptic_follow_up_to_an_i_dont_know_is_i_dont_know_too(demo_bundle, first, refused):
    from pipeline.answer import answer
    from pipeline.answer.calibrate import calibrate
    from pipeline.answer.index import TermStats

    settings, bundle = demo_bundle
    stats = TermStats.of(bundle)
    threshold = calibrate(bundle, settings, stats).threshold
    said = answer(bundle, first, settings, threshold=threshold, stats=stats)
    assert said.uncertain is refused
    history = [
        {"role": "user", "content": first},
        {"role": "assistant", "content": said.answer, "citations": said.citations},
    ]
    then = answer(bundle, "how do I fix it?", settings, history=history, threshold=threshold, stats=stats)
    assert then.answered_question == f"how do I fix it? (about: {first})"
    if refused:
        assert then.uncertain and not then.citations and then.suggestions
        assert "could not answer" in then.reason
    else:  # a follow-up to an answered question: the signals decide, and the cited atom comes first
        assert not then.uncertain, then.reason
        assert then.citations[0]["atom_id"] == said.citations[0]["atom_id"]


def test_title_vectors_give_a_question_s_nearest_title_and_the_spread_a_scan_gives():
    """``focus`` reads the title passages only, exactly: held-out passages (calibration's) are left out."""
    from pipeline.answer.answerability import chance_focus, focus
    from pipeline.answer.index import TitleVectors

    rng = np.random.default_rng(11)
    vectors = _unit(rng.standard_normal((30, 8))).astype(np.float32)
    kinds = ["title", "section", "section"] * 10  # one title passage per atom of three passages
    titles = TitleVectors.of(kinds, vectors)
    assert titles is not None and titles.ids.tolist() == list(range(0, 30, 3))
    q = _unit(rng.standard_normal((1, 8)))[0]
    cos = vectors[::3].astype(np.float64) @ q
    best, mean, std, n = titles.standing(q)
    assert (best, mean, std, n) == pytest.approx((cos.max(), cos.mean(), cos.std(), 10), abs=1e-5)
    nearest = int(titles.ids[int(np.argmax(cos))])
    assert titles.standing(q, {nearest})[0] == pytest.approx(np.sort(cos)[-2], abs=1e-5)
    assert titles.standing(q, {nearest})[3] == 9
    stats = type("S", (), {"titles": titles})()
    z = (cos.max() - cos.mean()) / cos.std()
    assert focus(q, stats) == pytest.approx(z - chance_focus(10), rel=1e-4)
    assert focus(q, stats, {int(i) for i in titles.ids[1:]}) == 0.0  # one title left: no spread to stand out of


def test_focus_counts_what_the_nearest_title_stands_out_beyond_chance():
    """The largest of n z-scores grows with n: a bundle of three atoms cannot reach the focus of one of two
    hundred, so the chance level of each is taken away (the expected largest of n normal draws)."""
    from pipeline.answer.answerability import chance_focus

    rng = np.random.default_rng(4)
    for n in (3, 30, 200):
        draws = rng.standard_normal((4000, n)).max(axis=1)
        assert chance_focus(n) == pytest.approx(draws.mean(), abs=0.05)
    assert chance_focus(1) == 0.0 and chance_focus(3) < 1.0 < chance_focus(30) < chance_focus(200) < 3.0


def test_no_title_vectors_without_two_titles_or_with_kinds_that_do_not_match():
    from pipeline.answer.answerability import focus
    from pipeline.answer.index import TitleVectors

    vectors = _unit(np.random.default_rng(2).standard_normal((4, 8))).astype(np.float32)
    assert TitleVectors.of(["title", "section", "section", "faq"], vectors) is None
    assert TitleVectors.of(["title", "title"], vectors) is None  # kinds of other passages than the vectors'
    assert TitleVectors.of(None, vectors) is None
    assert focus(vectors[0], _Stats(None)) == 0.0  # an index without passage kinds: no focus, nothing breaks
