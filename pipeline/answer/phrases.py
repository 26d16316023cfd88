"""The phrase signal: a command or flag the question names that the knowledge base never writes.

The missing-word rule (``answerability.py``) sees a topic whose *words* the corpus lacks. A question
about ``podman top`` or ``argocd app rollback`` passes it: "podman", "top", "app" and "rollback" all
occur somewhere, just never as that command. So the phrases a question names as commands are
looked up as sequences of adjacent stemmed tokens (``TermStats.has_phrase``, on demand per phrase):

* a command: a tool's name (a word the corpus uses in at least ``COMMAND_SHARE`` of its passages and
  general English does not know: "podman", "argocd") written after an instrument word ("with",
  "using", "run", ...) and followed by its subcommand words ("with podman top", "using argocd app
  rollback"). The tool and its first word must be adjacent in some passage; a second word must
  follow them there too;
* a flag of several parts ("--encryption-key", "--pids-limit"): its parts adjacent in some passage.

The instrument word keeps sentences about the tool ("podman says newuidmap is missing", "the
podman graphroot") out: there the next word is the user's prose, not a subcommand.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection
from typing import Any

from pipeline.answer.index import TermStats

#: A tool's name is a term in at least this share of passages (chosen on dev + dev2, never report).
COMMAND_SHARE = 0.05
#: ... and rarer than this in general English (wordfreq's Zipf scale; 0 = unknown to it).
COMMAND_ZIPF = 1.0
#: Words that introduce the command a question names.
INSTRUMENT = frozenset("with using use via through by run runs running execute type typing call calling".split())
_CLAUSE = re.compile(r"[?!;,()\"']+|\s[.:]\s|[.:]$")
_RAW = re.compile(r"--?[A-Za-z0-9][\w.-]*|[A-Za-z0-9][\w.+-]*[A-Za-z0-9]|[A-Za-z0-9]")


def missing_phrases(
    question: str,
    index: Any,
    stats: TermStats,
    zipf: Callable[[str], float | None],
    stopwords: Collection[str],
    exclude: set[int] | None = None,
) -> list[str]:
    """The commands and flags ``question`` names that no passage (outside ``exclude``) writes."""
    out: list[str] = []
    for clause in _CLAUSE.split(question):
        raw = _RAW.findall(clause)
        if len(raw) < 2:
            continue
        stems = index.tokenize(raw)
        for i, word in enumerate(raw):
            if word.startswith("--") and len(stems[i]) >= 2:
                if not stats.has_phrase(tuple(stems[i][:3]), exclude):
                    out.append(word)
            elif i and raw[i - 1].lower() in INSTRUMENT and _is_tool(word, stems[i], stats, zipf):
                out += _missing_command(raw[i:], stems[i:], stats, stopwords, exclude)
    return out


def _missing_command(
    raw: list[str], stems: list[list[str]], stats: TermStats, stopwords: Collection[str], exclude: set[int] | None
) -> list[str]:
    """``[tool, word...]`` as written, when the tool and its subcommand words (lowercase words up to
    a stopword or a flag, at most two more stems) are not adjacent in any passage."""
    seq, used = [stems[0][0]], [raw[0]]
    for w, ss in zip(raw[1:3], stems[1:3], strict=False):
        if w.startswith("-") or not w.islower() or w in stopwords or not ss or len(seq) >= 3:
            break
        seq += ss[: 3 - len(seq)]
        used.append(w)
    if len(seq) < 2:
        return []
    if not stats.has_phrase(tuple(seq[:2]), exclude):
        return [" ".join(used[:2])]
    if len(seq) == 3 and not stats.has_phrase(tuple(seq), exclude):
        return [" ".join(used)]
    return []


def _is_tool(word: str, stems: list[str], stats: TermStats, zipf: Callable[[str], float | None]) -> bool:
    if not word.islower() or len(stems) != 1:
        return False
    z = zipf(word)
    return z is not None and z < COMMAND_ZIPF and stats.df.get(stems[0], 0) >= COMMAND_SHARE * stats.passages
