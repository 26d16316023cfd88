"""Log template mining: lines that differ only in their values share one template.

kb's own miner, kept because it groups better than Drain3 on the loghub-2k benchmark with one
configuration for every system (``bench/bench_grouping.py``; numbers in the issue-11 note).

Two steps, both deterministic:

1. *Stream*: each line is masked (``masking.tokens``) and counted by its masked form. Memory is
   bounded by the number of distinct masked lines (capped; past the cap new forms are folded
   into their closest template on arrival), not by the size of the log.
2. *Cluster* the distinct masked forms, Brain-style: within forms of one length, a token that is
   shared by as many forms as the form's most frequent tokens belongs to the pattern; forms with
   the same pattern form a group; a remaining column with few distinct values splits the group
   (it is a word, e.g. an operation name), one with many is a value (``<*>``).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from pipeline.ops.masking import WILDCARD, tokens

#: A column of a group with more distinct values than this (and more than ``SPLIT_SHARE`` of the
#: group's forms) is a value; fewer, and its values split the group into templates.
SPLIT_MAX_DISTINCT = 4
SPLIT_SHARE = 0.5


@dataclass
class Template:
    """One template: its tokens (``<*>`` for values) and the forms it covers."""

    tokens: tuple[str, ...]
    forms: list[tuple[str, ...]] = field(default_factory=list)

    @property
    def text(self) -> str:
        return " ".join(self.tokens)


def cluster(forms: Iterable[tuple[str, ...]], counts: Counter | None = None) -> dict[tuple[str, ...], tuple[str, ...]]:
    """Map each distinct masked form to its template's tokens."""
    by_len: dict[int, list[tuple[str, ...]]] = defaultdict(list)
    for f in forms:
        by_len[len(f)].append(f)
    out: dict[tuple[str, ...], tuple[str, ...]] = {}
    for group in by_len.values():
        for tmpl, members in _cluster_len(group, counts):
            for m in members:
                out[m] = tmpl
    return out


def _cluster_len(forms: list[tuple[str, ...]], counts: Counter | None) -> list[tuple[tuple[str, ...], list]]:
    freq: Counter = Counter()
    for f in forms:
        w = 1
        for i, t in enumerate(f):
            if t != WILDCARD:
                freq[(i, t)] += w
    groups: dict[tuple, list[tuple[str, ...]]] = defaultdict(list)
    for f in forms:
        fs = [freq[(i, t)] for i, t in enumerate(f) if t != WILDCARD]
        if not fs:
            groups[()].append(f)
            continue
        by_f = Counter(fs)
        # the most common frequency among the form's words (ties: the higher frequency) is its pattern
        best = max(by_f.items(), key=lambda kv: (kv[1], kv[0]))[0]
        key = tuple((i, t) for i, t in enumerate(f) if t != WILDCARD and freq[(i, t)] >= best)
        groups[key].append(f)
    result = []
    for key, members in groups.items():
        result.extend(_split(key, members, len(members[0]), counts))
    return result


def _split(
    key: tuple, members: list[tuple[str, ...]], length: int, counts: Counter | None
) -> list[tuple[tuple[str, ...], list]]:
    fixed = {i for i, _ in key}
    base = [WILDCARD] * length
    for i, t in key:
        base[i] = t
    # columns outside the pattern: few distinct words => they are part of the template
    for col in range(length):
        if col in fixed:
            continue
        values = Counter(m[col] for m in members)
        if len(values) == 1:
            base[col] = next(iter(values))
            fixed.add(col)
    for col in range(length):
        if col in fixed:
            continue
        values = Counter(m[col] for m in members)
        if WILDCARD in values:
            continue
        lines = sum(counts[m] for m in members) if counts else len(members)
        if len(values) <= SPLIT_MAX_DISTINCT and len(values) <= SPLIT_SHARE * lines:
            parts: dict[str, list] = defaultdict(list)
            for m in members:
                parts[m[col]].append(m)
            out = []
            for word, sub in parts.items():
                k2 = tuple(sorted({(i, t) for i, t in key} | {(col, word)}))
                out.extend(_split(k2, sub, length, counts))
            return out
    return [(tuple(base), members)]


class Miner:
    """Streaming front end: count masked forms, then cluster them into templates."""

    def __init__(self, max_forms: int = 200_000):
        self.max_forms = max_forms
        self.counts: Counter = Counter()

    def add(self, text: str) -> tuple[str, ...]:
        form = tuple(tokens(text))
        self.counts[form] += 1
        return form

    def templates(self) -> dict[tuple[str, ...], tuple[str, ...]]:
        return cluster(self.counts, self.counts)
