"""Duplicate ids and near-duplicate atoms (the latter without comparing every pair).

Blocking by MinHash LSH: each atom's title + summary is cut into character 5-grams, hashed with
``PERMS`` multiply-shift hash functions (numpy, vectorised over every atom at once), and the
signature is split into ``BANDS`` bands; atoms that agree on a whole band land in the same
block. Only atoms within a block are compared, with ``rapidfuzz.process.cdist``
(``token_sort_ratio``, in C). Two texts whose 5-gram Jaccard similarity is 0.6 share a block
with probability ~0.94 (0.5: ~0.73; unrelated texts almost never), so the work grows with the
number of atoms, not its square. Deterministic: fixed seeds, no Python ``hash()``.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import numpy as np
from rapidfuzz import fuzz, process, utils

from pipeline.findings import ERROR, RULES, Finding
from pipeline.stages.check.context import AtomInfo

BANDS = 20
ROWS = 4
PERMS = BANDS * ROWS
SHINGLE = 5


def comparison_keys(infos: list[Any]) -> tuple[list[Any], list[str]]:
    """The atoms that have a title, and the normalised 'title summary' text each is compared by."""
    items, keys = [], []
    for info in infos:
        if not info.title:
            continue
        items.append(info)
        keys.append(utils.default_process(f"{info.title} {info.summary or ''}"))
    return items, keys


def signatures(keys: list[str]) -> np.ndarray:
    """MinHash signatures (len(keys), PERMS) over character SHINGLE-grams of each key."""
    enc = [k.encode("utf-8").ljust(SHINGLE, b" ") for k in keys]
    lengths = np.fromiter((len(e) for e in enc), dtype=np.int64, count=len(enc))
    counts = lengths - SHINGLE + 1
    offsets = np.concatenate(([0], np.cumsum(lengths)[:-1]))
    buf = np.frombuffer(b"".join(enc), dtype=np.uint8).astype(np.uint64)
    # the SHINGLE bytes starting at every position, packed into one integer
    grams = np.zeros(len(buf) - SHINGLE + 1, dtype=np.uint64)
    for i in range(SHINGLE):
        grams = (grams << np.uint64(8)) | buf[i : len(buf) - SHINGLE + 1 + i]
    # keep only the positions whose gram lies inside one key
    starts = np.repeat(offsets, counts)
    within = np.arange(int(counts.sum()), dtype=np.int64) - np.repeat(np.cumsum(counts) - counts, counts)
    grams = grams[starts + within]
    seg = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rng = np.random.default_rng(20260304)
    a = rng.integers(1, 2**63, size=PERMS, dtype=np.uint64) | np.uint64(1)
    b = rng.integers(0, 2**63, size=PERMS, dtype=np.uint64)
    sig = np.empty((len(keys), PERMS), dtype=np.uint64)
    with np.errstate(over="ignore"):
        for p in range(PERMS):
            h = (grams * a[p] + b[p]) >> np.uint64(32)
            sig[:, p] = np.minimum.reduceat(h, seg)
    return sig


def blocks(sig: np.ndarray) -> list[np.ndarray]:
    """Groups of row indices that agree on at least one whole band (each group has >= 2 rows)."""
    out = []
    n = sig.shape[0]
    mix = np.array([0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93], dtype=np.uint64)
    with np.errstate(over="ignore"):
        for band in range(BANDS):
            part = sig[:, band * ROWS : (band + 1) * ROWS]
            key = np.zeros(n, dtype=np.uint64)
            for r in range(ROWS):
                key ^= part[:, r] * mix[r % len(mix)] + np.uint64(r)
            order = np.argsort(key, kind="stable")
            sk = key[order]
            cut = np.flatnonzero(np.diff(sk)) + 1
            for group in np.split(order, cut):
                if len(group) > 1:
                    out.append(group)
    return out


def near_duplicate_pairs(keys: list[str], threshold: float) -> dict[tuple[int, int], float]:
    """Pairs (i < j) of keys whose token_sort_ratio reaches ``threshold``, found within blocks."""
    if len(keys) < 2:
        return {}
    pairs: dict[tuple[int, int], float] = {}
    seen_blocks: set[bytes] = set()
    for group in blocks(signatures(keys)):
        group = np.sort(group)
        tag = group.tobytes()
        if tag in seen_blocks:
            continue
        seen_blocks.add(tag)
        sub = [keys[i] for i in group]
        scores = process.cdist(
            sub, sub, scorer=fuzz.token_sort_ratio, score_cutoff=threshold, dtype=np.float32, workers=1
        )
        ii, jj = np.nonzero(np.triu(scores, k=1) >= threshold)
        for i, j in zip(ii.tolist(), jj.tolist(), strict=True):
            pairs[(int(group[i]), int(group[j]))] = float(scores[i, j])
    return pairs


def near_duplicates(infos: list[Any], threshold: float, per_atom: int = 3) -> list[Any]:
    """``near-duplicate`` warnings for checked atoms whose title + summary nearly equal another's.

    Each atom gets at most ``per_atom`` warnings (its most similar others); the last one says how
    many more there are, so a folder of copies does not drown the output.
    """
    items, keys = comparison_keys(infos)
    others: dict[int, list[tuple[float, int]]] = {}
    for (i, j), score in near_duplicate_pairs(keys, threshold).items():
        others.setdefault(i, []).append((score, j))
        others.setdefault(j, []).append((score, i))
    hint = RULES["near-duplicate"][2]
    hint = hint[0].upper() + hint[1:] + "."
    out = []
    for i in sorted(others):
        this = items[i]
        if not this.checked:
            continue
        ranked = sorted(others[i], key=lambda sj: (-sj[0], items[sj[1]].rel))
        for n, (score, j) in enumerate(ranked[:per_atom]):
            other = items[j]
            more = len(ranked) - per_atom
            tail = f"; and {more} more" if n == per_atom - 1 and more > 0 else ""
            out.append(
                Finding(
                    this.rel,
                    this.title_line,
                    None,
                    "warning",
                    "near-duplicate",
                    f'nearly the same title and summary as {other.rel} ("{other.title}", similarity {score:.0f}){tail}',
                    hint,
                )
            )
    return out


def duplicate_ids(infos: list[AtomInfo]) -> list[Finding]:
    by_id: dict[str, list[AtomInfo]] = defaultdict(list)
    for info in infos:
        if info.id:
            by_id[info.id].append(info)
    out = []
    for atom_id, group in by_id.items():
        if len(group) < 2:
            continue
        for info in group:
            if not info.checked:
                continue
            others = ", ".join(o.rel for o in group if o is not info)
            out.append(
                Finding(
                    info.rel,
                    info.id_line,
                    None,
                    ERROR,
                    "duplicate-id",
                    f"id '{atom_id}' is also used by {others}",
                    "Give one of the atoms another id (and rename its file to match).",
                )
            )
    return out
