"""The ``uncertain`` threshold of a bundle, calibrated on the bundle itself when it is loaded.

Why per bundle: the cosine an unanswerable question reaches grows with the size of the
knowledge base (more passages, more chance near-misses), so one fixed number is too strict for
a small bundle and too lax for a large one. Measured with ``bench/calibrate_uncertain.py``: the
best threshold was 0.30 on the 5 sample docs and 0.41 on the 33 full Argo CD + Podman docs.

Positives: the bundle's own FAQ questions, each searched with its own FAQ passage hidden (so it
cannot meet its stored copy and must find its atom through the title, sections and other pairs;
a sample of at most ``MAX_POSITIVES``). Negatives: ``OFF_TOPIC`` (questions no technical
knowledge base of this kind answers, plus adjacent IT topics). The threshold is the middle of
the widest gap between evidence values where accuracy is maximal. Fewer than ``MIN_POSITIVES``
FAQ questions, or an accuracy under ``MIN_ACCURACY``: the per-model default of
``evidence.UNCERTAIN_BELOW`` is used instead (measured on the sample interview bundle, whose
questions are conversational interviewer turns: 0.87, so it keeps the default).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pipeline.answer.evidence import evidence_of, threshold_for
from pipeline.config import Settings

MIN_POSITIVES = 10
MAX_POSITIVES = 200
#: A bundle whose own questions separate worse than this (e.g. conversational interviewer
#: questions of extractive drafts) keeps the default: its measurement is not trusted.
MIN_ACCURACY = 0.9

#: Negatives of the calibration (written for kb, CC0). Same list as tests/data/service/offtopic.txt.
OFF_TOPIC: tuple[str, ...] = (
    "What is a good recipe for banana bread?",
    "Who won the football world cup in 2014?",
    "How many moons does Jupiter have?",
    "What is the capital of Australia?",
    "How do I knit a scarf for beginners?",
    "What are the symptoms of the flu?",
    "How long should I boil an egg?",
    "Which wine goes well with salmon?",
    "How do I train my dog to sit?",
    "What is the best time of year to visit Japan?",
    "How do I change a flat tyre on a bicycle?",
    "Who wrote Pride and Prejudice?",
    "What is the exchange rate between euro and dollar?",
    "How do I grow tomatoes on a balcony?",
    "What causes the northern lights?",
    "How do I write a cover letter for a job application?",
    "What is the plot of Hamlet?",
    "How many calories are in an apple?",
    "How do I fix a leaking kitchen tap?",
    "What is the difference between a crocodile and an alligator?",
    "How do I file my tax return?",
    "What is the speed of light in a vacuum?",
    "How do I make a sourdough starter?",
    "Which programming language should I learn first?",
    "How do I centre a div in CSS?",
    "How do I reverse a linked list in Java?",
    "What is the time complexity of quicksort?",
    "How do I create a pivot table in Excel?",
    "How do I reset my iPhone to factory settings?",
    "How do I configure a printer on Windows 11?",
    "How do I set up two-factor authentication for my email account?",
    "What is the difference between TCP and UDP?",
    "How do I write a SQL query that joins three tables?",
    "How do I undo the last git commit?",
    "How do I configure autoscaling for an AWS Lambda function?",
    "How do I tune the garbage collector of the Java virtual machine?",
    "How do I install PostgreSQL on macOS?",
    "How do I speed up a slow React application?",
    "How do I configure Nginx as a reverse proxy with TLS?",
    "What is the difference between Terraform and Ansible?",
)


@dataclass
class Calibration:
    threshold: float
    source: str  # setting | bundle | default
    accuracy: float | None = None
    positives: int = 0
    negatives: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def best_threshold(pos: list[float], neg: list[float]) -> tuple[float, float, float, float]:
    """(threshold, accuracy, low, high): the middle of the widest gap between data points where the
    accuracy is maximal (robust: as far as the data allows from both kinds of question)."""
    points = sorted(set(pos) | set(neg))
    gaps = (
        [(points[0] - 0.05, points[0])]
        + list(zip(points, points[1:], strict=False))
        + [(points[-1], points[-1] + 0.05)]
    )

    def accuracy(t: float) -> float:
        return (sum(p >= t for p in pos) + sum(n < t for n in neg)) / (len(pos) + len(neg))

    scored = [(accuracy((lo + hi) / 2), hi - lo, lo, hi) for lo, hi in gaps]
    top = max(a for a, *_ in scored)
    _, _, low, high = max((x for x in scored if x[0] == top), key=lambda x: x[1])
    return (low + high) / 2, top, low, high


def evidence_values(bundle: Any, questions: list[str], exclude: list[list[int]] | None = None) -> list[float]:
    """The evidence (best cosine of a hit) of each question; one embedding batch for all."""
    if not questions:
        return []
    vectors = bundle.embedder.encode(list(questions))
    out = []
    for i, q in enumerate(questions):
        kwargs: dict[str, Any] = {"query_vector": vectors[i]}
        if exclude and exclude[i]:
            kwargs["exclude_passages"] = exclude[i]
        out.append(evidence_of(bundle.search(q, k=5, **kwargs)))
    return out


def held_out_questions(bundle: Any, limit: int = MAX_POSITIVES) -> tuple[list[str], list[list[int]]]:
    """The bundle's FAQ questions (an even sample of at most ``limit``) and each one's own passages."""
    pairs = [(q, own) for _, q, own in bundle.faq_questions()]
    if len(pairs) > limit:
        step = len(pairs) / limit
        pairs = [pairs[int(i * step)] for i in range(limit)]
    return [q for q, _ in pairs], [own for _, own in pairs]


def calibrate(bundle: Any, settings: Settings) -> Calibration:
    """The threshold for ``bundle``: the setting if given, else measured on the bundle, else the default."""
    if settings.serve.uncertain_below is not None:
        return Calibration(settings.serve.uncertain_below, "setting")
    default = threshold_for(bundle.manifest.embedding.model, settings)
    questions, own = held_out_questions(bundle)
    if len(questions) < MIN_POSITIVES or getattr(bundle, "embedder", None) is None:
        return Calibration(default, "default", positives=len(questions))
    pos = evidence_values(bundle, questions, own)
    neg = evidence_values(bundle, list(OFF_TOPIC))
    threshold, accuracy, _, _ = best_threshold(pos, neg)
    if accuracy < MIN_ACCURACY:
        return Calibration(default, "default", round(accuracy, 4), len(pos), len(neg))
    return Calibration(round(threshold, 4), "bundle", round(accuracy, 4), len(pos), len(neg))
