"""Estimated times for transcripts that carry few or no timestamps (speaker-labelled text).

Time is interpolated by word position between anchors (inline ``[mm:ss]`` stamps the source
gives at some word), so an estimate is never further off than the distance between anchors
allows. Before the first anchor it runs from 0; after the last one at the speaking rate fitted
on the anchors (or ``DEFAULT_WPS``, 150 words a minute).
"""

from __future__ import annotations

from bisect import bisect_right
from dataclasses import dataclass

DEFAULT_WPS = 2.5
MIN_WPS, MAX_WPS = 1.5, 4.0


@dataclass(frozen=True)
class Anchor:
    word: int  # index of the word (in the whole transcript) the stamp stands before
    seconds: float
    line: int | None = None


def monotonic(anchors: list[Anchor]) -> tuple[list[Anchor], list[Anchor]]:
    """(kept, dropped): anchors whose time goes backwards are dropped (typos in the source)."""
    kept: list[Anchor] = []
    dropped: list[Anchor] = []
    for a in sorted(anchors, key=lambda a: a.word):
        if kept and a.seconds < kept[-1].seconds:
            dropped.append(a)
            continue
        if kept and a.word == kept[-1].word:
            continue  # two stamps at one place: keep the first
        kept.append(a)
    return kept, dropped


class Clock:
    """Word index -> seconds, piecewise linear through the anchors."""

    def __init__(self, anchors: list[Anchor], default_wps: float = DEFAULT_WPS):
        self.anchors, self.dropped = monotonic(anchors)
        pts = [(0, 0.0)] if not self.anchors or self.anchors[0].word > 0 else []
        pts += [(a.word, a.seconds) for a in self.anchors]
        self.words = [p[0] for p in pts]
        self.times = [p[1] for p in pts]
        wps = default_wps
        if len(self.anchors) >= 2:
            span_w = self.anchors[-1].word - self.anchors[0].word
            span_t = self.anchors[-1].seconds - self.anchors[0].seconds
            if span_w > 0 and span_t > 0:
                wps = span_w / span_t
        # stamps far apart include pauses and breaks: keep the rate within human speech
        self.wps = min(max(wps, MIN_WPS), MAX_WPS)

    def at(self, word: int) -> float:
        i = bisect_right(self.words, word) - 1
        if i >= len(self.words) - 1:
            return self.times[-1] + (word - self.words[-1]) / self.wps
        w0, w1 = self.words[i], self.words[i + 1]
        t0, t1 = self.times[i], self.times[i + 1]
        return t0 + (t1 - t0) * (word - w0) / (w1 - w0)
