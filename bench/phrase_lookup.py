"""Phrase lookup (``TermStats.has_phrase``): postings intersection vs the previous scan, same process.

Usage: python bench/phrase_lookup.py [--passages 200000] [--phrases 200] [--seed 7]

A synthetic TermStats: passages of 8-120 stemmed tokens (median ~35) drawn from a Zipfian
vocabulary of 60,000 pseudo-words (exponent 1.07, like English text), five passages per atom. The
phrases are fresh (no cache hit), 2-3 stems each, shaped like the command-shaped questions that ask:
half written somewhere (taken from a passage: "tool subcommand [arg]"), half not (a frequent "tool"
term then a term never after it, or in the wrong order). The reference is the scan ``has_phrase``
ran before postings (kept here only): every passage's term set, then adjacency in its tokens. Both
must give the same passages for every phrase. The positional postings (each term's token offsets)
are built once, on the first lookup: their time and memory (tracemalloc, a second build) are
printed apart from the lookups.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import tracemalloc
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from pipeline.answer.index import TermStats  # noqa: E402

VOCAB = 60_000
ZIPF_S = 1.07


def old_phrase_hits(stats: TermStats, stems: tuple[str, ...]) -> tuple[int, ...]:
    """``TermStats._phrase_hits`` before postings (the reference): a scan of every passage's term set."""
    if any(stats.df.get(t, 0) == 0 for t in stems):
        return ()
    first = sorted(stems, key=lambda t: stats.df.get(t, 0))
    n = len(stems)
    out = []
    for i, terms in enumerate(stats.passage_terms):
        if all(t in terms for t in first):
            tokens = stats.passage_tokens[i]
            if any(tuple(tokens[j : j + n]) == stems for j in range(len(tokens) - n + 1)):
                out.append(i)
    return tuple(out)


def words(rng: np.random.Generator, n: int) -> list[str]:
    """``n`` distinct pseudo-words of 3-9 letters (stems look like 'contain', 'rootless', 'podman')."""
    syllables = [c + v for c in "bcdfghklmnprstvwz" for v in "aeiou"] + ["st", "tr", "x", "ng", "qu"]
    out: dict[str, None] = {}
    while len(out) < n:
        out.setdefault("".join(rng.choice(syllables, size=int(rng.integers(2, 5)))), None)
    return list(out)


class Corpus:
    """What ``TermStats.of`` reads from an index: (atom id, stemmed tokens) per passage."""

    def __init__(self, passages: int, rng: np.random.Generator) -> None:
        vocab = words(rng, VOCAB)
        p = 1.0 / np.arange(1, VOCAB + 1) ** ZIPF_S
        lengths = np.clip(rng.lognormal(3.55, 0.6, passages).astype(int), 8, 120)
        ids = rng.choice(VOCAB, size=int(lengths.sum()), p=p / p.sum())
        cuts = np.cumsum(lengths)[:-1]
        self.rows = [(f"atom-{i // 5}", [vocab[t] for t in doc.tolist()]) for i, doc in enumerate(np.split(ids, cuts))]
        self.vocab = vocab

    def passage_tokens(self) -> list[tuple[str, list[str]]]:
        return self.rows


def fresh_phrases(corpus: Corpus, stats: TermStats, n: int, rng: np.random.Generator) -> list[tuple[str, ...]]:
    """``n`` distinct phrases: half taken from passages (present), half frequent-term + a term not after it."""
    tools = [t for t in corpus.vocab[:400] if stats.df.get(t, 0) >= 0.05 * stats.passages] or corpus.vocab[:20]
    out: dict[tuple[str, ...], None] = {}
    while len(out) < n:
        size = 2 + int(rng.random() < 0.4)
        if len(out) % 2 == 0:  # written somewhere: a tool term and what follows it in a passage
            tokens = stats.passage_tokens[int(rng.integers(stats.passages))]
            starts = [j for j, t in enumerate(tokens[: len(tokens) - size + 1]) if t in tools]
            if not starts:
                continue
            j = starts[int(rng.integers(len(starts)))]
            out.setdefault(tuple(tokens[j : j + size]), None)
        else:  # a tool then a mid-frequency term, or the same pair reversed: mostly never adjacent
            tool = tools[int(rng.integers(len(tools)))]
            rest = [corpus.vocab[int(rng.integers(200, 20_000))] for _ in range(size - 1)]
            out.setdefault(tuple([tool, *rest]) if rng.random() < 0.7 else tuple([*rest, tool]), None)
    return list(out)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--passages", type=int, default=200_000)
    ap.add_argument("--phrases", type=int, default=200)
    ap.add_argument("--seed", type=int, default=7)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    corpus = Corpus(args.passages, rng)
    stats = TermStats.of(corpus)
    tokens = sum(len(t) for _, t in corpus.rows)
    pairs = sum(len(t) for t in stats.passage_terms)
    print(
        f"corpus: {stats.passages:,} passages, {tokens:,} tokens, {len(stats.df):,} terms, {pairs:,} "
        f"(passage, term) pairs; made in {time.perf_counter() - t0:.1f} s; load average {os.getloadavg()[0]:.1f}"
    )
    phrases = fresh_phrases(corpus, stats, args.phrases, rng)

    gc.collect()
    t0 = time.perf_counter()
    stats._inverted()
    build_s = time.perf_counter() - t0
    rows, indptr, offsets, starts = stats._postings or stats._inverted()
    arrays_mb = (indptr.nbytes + offsets.nbytes + starts.nbytes) / 1e6
    twin = TermStats(stats.passages, stats.df, stats.atom_terms, [], stats.passage_terms, stats.passage_tokens)
    gc.collect()
    tracemalloc.start()
    twin._inverted()
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del twin
    print(
        f"positional postings, built once: {build_s:.2f} s; kept {kept / 1e6:.0f} MB ({arrays_mb:.0f} MB arrays, "
        f"the rest the term -> row dict), peak {peak / 1e6:.0f} MB while building"
    )

    old_s, new_s, same, present = [], [], 0, 0
    for stems in phrases:
        t0 = time.perf_counter()
        want = old_phrase_hits(stats, stems)
        old_s.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        found = stats.has_phrase(stems)
        new_s.append(time.perf_counter() - t0)
        same += stats._phrases[stems] == want and found == bool(want)
        present += bool(want)
    old_total, new_total = sum(old_s), sum(new_s)
    print(f"{len(phrases)} fresh phrases ({present} written somewhere): same passages for {same}/{len(phrases)}")
    for name, took in (("previous scan", old_s), ("postings     ", new_s)):
        q = np.quantile(took, [0.5, 0.9]) * 1e3
        print(
            f"  {name}: {sum(took):.3f} s total; per phrase p50 {q[0]:.3f} ms, p90 {q[1]:.3f}, max {max(took) * 1e3:.3f}"
        )
    print(f"  ratio postings / scan: {new_total / old_total:.4f} (x{old_total / new_total:.0f} faster)")
    per_old = old_total / len(phrases)
    print(
        f"  with the one-off build: {(build_s + new_total) / old_total:.3f} of the scan's time for these "
        f"{len(phrases)}; the build pays for itself after {build_s / max(per_old - new_total / len(phrases), 1e-9):.0f} phrases"
    )
    terms = [corpus.vocab[int(i)] for i in rng.integers(0, VOCAB, 20)]
    agree = sum(
        stats.passages_with(t).tolist() == [i for i, ts in enumerate(stats.passage_terms) if t in ts] for t in terms
    )
    print(f"passages_with (the held-out-only check): same passages as a scan for {agree}/{len(terms)} terms")
    if same != len(phrases) or agree != len(terms):
        raise SystemExit("postings and the scan disagree: see the counts above")


if __name__ == "__main__":
    main()
