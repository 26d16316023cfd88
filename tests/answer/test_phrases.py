"""The phrase signal and the English-rarity weights of coverage, on a small fixed corpus (no bundle,
no model): the real tokenizer (bm25s + stemmer) and the real ``TermStats`` over a few passages."""

from __future__ import annotations

import pytest

from pipeline.answer.answerability import STOPWORDS, signals, term_weights, word_zipf
from pipeline.answer.index import TermStats
from pipeline.answer.phrases import missing_phrases
from pipeline.index.lexical import tokenize

pytest.importorskip("wordfreq", reason="the kb-atoms[answer] extra (wordfreq) judges English rarity")

PASSAGES = [
    ("run-rootless", "Run podman run --userns=keep-id to keep your uid inside the container."),
    ("build-hangs", "podman build hangs at a useradd step: add --no-log-init to useradd."),
    ("app-sync", "argocd app sync my-app syncs the application; argocd app get shows its state."),
    ("hpa", "Let the HorizontalPodAutoscaler (HPA) own spec.replicas: ignore the replicas field."),
    ("push", "podman push sends the image to a registry; sign it with --sign-by."),
] + [(f"filler-{i}", f"podman machine {i} starts a virtual machine for argocd and podman containers") for i in range(8)]


class Corpus:
    """What ``TermStats.of`` and the signals read from an index: passages' tokens, the tokenizer."""

    def passage_tokens(self):
        return [(a, t) for (a, _), t in zip(PASSAGES, tokenize([p for _, p in PASSAGES]), strict=True)]

    def tokenize(self, texts):
        return tokenize(texts)


@pytest.fixture(scope="module")
def corpus():
    index = Corpus()
    return index, TermStats.of(index)


def phrases(question, corpus):
    index, stats = corpus
    return missing_phrases(question, index, stats, word_zipf, STOPWORDS)


@pytest.mark.parametrize(
    ("question", "missing"),
    [
        ("How do I list the processes of a container with podman top?", ["podman top"]),
        ("How do I roll back with argocd app rollback?", ["argocd app rollback"]),
        ("How do I encrypt a layer with podman push --encryption-key?", ["--encryption-key"]),
        ("How do I keep my uid with podman run --userns?", []),  # the command is written in a passage
        ("sync it with argocd app sync", []),
        ("podman says top is missing", []),  # no instrument word: prose about podman, not a command
        ("the podman logs are empty", []),
    ],
)
def test_commands_and_flags_the_corpus_never_writes_are_missing(question, missing, corpus):
    assert phrases(question, corpus) == missing


def test_the_phrase_only_a_held_out_passage_writes_is_missing(corpus):
    index, stats = corpus
    assert missing_phrases("fix it with podman build", index, stats, word_zipf, STOPWORDS) == []
    held = set(stats.atom_passages("build-hangs"))
    assert missing_phrases("fix it with podman build", index, stats, word_zipf, STOPWORDS, held) == ["podman build"]


def test_common_english_words_weigh_less_than_the_topic_in_coverage(corpus):
    index, stats = corpus
    weights = term_weights([("fighting", "fight"), ("replicas", "replica")], stats)
    assert stats.idf("fight") > stats.idf("replica")  # the corpus alone would favour the paraphrase word
    assert weights["fight"] < weights["replica"]


def test_a_missing_command_refuses_even_when_every_word_is_covered(corpus):
    index, stats = corpus

    class Hit:
        atom_id, dense_score = "filler-1", 0.9

    sig = signals("list processes with podman top", [Hit()], index, stats)
    assert "podman top" in sig.missing


@pytest.mark.parametrize(
    ("text", "expanded"),
    [
        ("there aren't enough spare ids", "there are not enough spare ids"),
        ("I can't bind port 80", "I can not bind port 80"),
        ("it won\u2019t start", "it will not start"),
        ("the container's files", "the container files"),
        ("we're stuck, don't know", "we stuck, do not know"),
    ],
)
def test_contractions_are_words_not_topics(text, expanded):
    from pipeline.answer.answerability import expand_contractions

    assert expand_contractions(text) == expanded


def test_a_contraction_is_not_a_word_the_corpus_lacks(corpus):
    """ "aren't" once read as a word "aren" that no passage has: a salient missing topic, refused."""
    from pipeline.answer.answerability import content_words

    index, stats = corpus
    words = [w for w, _ in content_words("podman machine starts aren't enough containers", index)]
    assert "aren" not in words and "t" not in words
    assert words == ["podman", "machine", "starts", "enough", "containers"]
