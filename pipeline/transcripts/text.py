"""Speaker-labelled Markdown / plain text -> turns with estimated times.

Reads the Changelog transcript format (``**Full Name:** text``, a long turn continued in
following paragraphs without a label, sparse ``\\[mm:ss\\]`` stamps, ``**Break:**`` pseudo
speakers), plain ``Name: text`` exports (``[hh:mm:ss]`` optional), and kb's own
``transcript.md`` (``**[00:12:34] Name (role):** text``). Markdown inline syntax (links,
emphasis, escapes, entities) is reduced to plain text with markdown-it-py; label lines are
recognised by line rules, because a label is layout, not Markdown.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError
from pipeline.transcripts.builder import Turn
from pipeline.transcripts.timing import Anchor, Clock
from pipeline.transcripts.vtt import read_text

TS = r"(?:\d{1,2}:)?\d{1,2}:\d{2}(?:\.\d+)?"
NAME = r"[A-Z][\w.'’-]*(?:[ ][A-Za-z][\w.'’-]*){0,4}|SPEAKER_\d+|Speaker \d+"

#: ``**[00:12:34] Alice Moreau (expert):** text``, ``**Alice:** text``, ``**Break**: [13:52]``
BOLD_LABEL = re.compile(
    rf"^\*\*\s*(?:\\?\[(?P<ts>{TS})\\?\]\s*)?(?P<name>[^*\n]+?)(?:\s*\((?P<role>[^()\n]*)\))?\s*"
    rf"(?::\s*\*\*|\*\*\s*:)[ \t]*(?P<rest>.*)$",
    re.S,
)
#: ``Alice Moreau: text``, ``[00:01:02] Alice: text``, ``Alice [00:01:02]: text``
PLAIN_LABEL = re.compile(
    rf"^(?:\[(?P<ts>{TS})\]\s*)?(?P<name>{NAME})(?:\s*\[(?P<ts2>{TS})\])?\s*:[ \t]+(?P<rest>.*)$", re.S
)
STAMP = re.compile(rf"\[(?:(?P<note>[A-Za-z][^\[\]\n]*?)\s+)?(?P<ts>{TS})\]")
PSEUDO_SPEAKERS = {"break", "jingle", "music", "ad", "ads", "sponsor", "intro", "outro", "theme"}
_COMMENT = re.compile(r"<!--.*?-->", re.S)


def seconds(stamp: str) -> float:
    total = 0.0
    for part in stamp.split(":"):
        total = total * 60 + float(part)
    return total


@dataclass
class _Para:
    line: int
    raw: str


@dataclass
class _RawTurn:
    label: str | None
    line: int
    paragraphs: list[str] = field(default_factory=list)
    anchors: list[tuple[int, float]] = field(default_factory=list)  # (word offset in turn, seconds)
    pseudo: bool = False


def _paragraphs(text: str, plain: bool) -> list[_Para]:
    """Blocks split at blank lines; in plain text also at every line (one line = one paragraph)."""
    text = _COMMENT.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    paras: list[_Para] = []
    cur: list[str] = []
    start = 1
    for i, line in enumerate(text.split("\n"), start=1):
        if not line.strip() or plain:
            if cur:
                paras.append(_Para(start, "\n".join(cur)))
                cur = []
            if not line.strip():
                continue
        if not cur:
            start = i
        cur.append(line)
    if cur:
        paras.append(_Para(start, "\n".join(cur)))
    return paras


def to_plain(markdown: str) -> str:
    """Inline Markdown -> the words a person reads (link text, no emphasis marks, entities decoded)."""
    from markdown_it import MarkdownIt

    tokens = MarkdownIt("commonmark").parseInline(markdown)
    out: list[str] = []
    for tok in tokens[0].children or [] if tokens else []:
        if tok.type in ("text", "code_inline", "text_special"):
            out.append(tok.content)
        elif tok.type in ("softbreak", "hardbreak"):
            out.append(" ")
        elif tok.type == "image":
            out.append(tok.content)
    return " ".join("".join(out).split())


def _stamps(text: str) -> tuple[str, list[tuple[int, float]]]:
    """Remove ``[mm:ss]`` stamps (``[note mm:ss]`` keeps ``[note]``); return (text, anchors by word)."""
    anchors: list[tuple[int, float]] = []
    out: list[str] = []
    pos = 0
    for m in STAMP.finditer(text):
        before = text[pos : m.start()]
        out.append(before)
        words_before = len("".join(out).split())
        anchors.append((words_before, seconds(m.group("ts"))))
        out.append(f"[{m.group('note')}]" if m.group("note") else "")
        pos = m.end()
    out.append(text[pos:])
    return " ".join("".join(out).split()), anchors


def parse_turns(text: str, path: Path, *, markdown: bool) -> tuple[list[_RawTurn], list[str]]:
    paras = _paragraphs(text, plain=not markdown)
    bold = any(BOLD_LABEL.match(p.raw) for p in paras)
    notes: list[str] = []
    turns: list[_RawTurn] = []
    for para in paras:
        m = BOLD_LABEL.match(para.raw) if bold else PLAIN_LABEL.match(para.raw)
        if m:
            name = " ".join(m.group("name").split())
            turn = _RawTurn(label=name, line=para.line, pseudo=name.lower() in PSEUDO_SPEAKERS)
            ts = m.group("ts") or (m.groupdict().get("ts2"))
            if ts:
                turn.anchors.append((0, seconds(ts)))
            turns.append(turn)
            body = m.group("rest")
        else:
            if not turns:
                first = para.raw.lstrip()
                if first.startswith(("#", ">", "---", "***", "___")) or not first:
                    continue  # title, front notes, rules before the first speaker
                turns.append(_RawTurn(label=None, line=para.line))
            body = para.raw
        turn = turns[-1]
        plain = to_plain(body) if markdown else " ".join(body.split())
        offset = sum(len(p.split()) for p in turn.paragraphs)
        plain, anchors = _stamps(plain)
        turn.anchors.extend((offset + w, s) for w, s in anchors)
        if plain:
            turn.paragraphs.append(plain)
    if not any(t.label for t in turns):
        raise InputError(
            "no speaker labels found",
            "Label each turn with the speaker: '**Name:** text' (Markdown) or 'Name: text' (plain text).",
            path=path,
            line=1,
        )
    return turns, notes


def read(path: Path, *, markdown: bool) -> tuple[list[Turn], str, list[str]]:
    """(turns, timing 'measured'|'estimated', notes for the reporter)."""
    text = read_text(path)
    if not text.strip():
        raise InputError("the transcript is empty", "Export the transcript again.", path=path, line=1)
    raw_turns, notes = parse_turns(text, path, markdown=markdown)
    anchors: list[Anchor] = []
    starts: list[int] = []
    position = 0
    for t in raw_turns:
        starts.append(position)
        stamps = t.anchors
        if t.pseudo and stamps:  # "**Jingle:** [44:33] to [44:49]": speech resumes at the last stamp
            stamps = [(0, max(s for _, s in stamps))]
        for w, s in stamps:
            anchors.append(Anchor(position + w, s, t.line))
        if not t.pseudo:
            position += sum(len(p.split()) for p in t.paragraphs)
    clock = Clock(anchors)
    for a in clock.dropped:
        notes.append(f"{path.name}:{a.line}: timestamp {a.seconds:.0f}s goes backwards; ignored for timing")
    speech = [(t, s) for t, s in zip(raw_turns, starts, strict=True) if not t.pseudo and t.paragraphs]
    anchored = {a.word for a in clock.anchors}
    measured = bool(speech) and all(s in anchored for _, s in speech)
    turns: list[Turn] = []
    for k, (t, s) in enumerate(speech):
        n = sum(len(p.split()) for p in t.paragraphs)
        start = clock.at(s)
        end = clock.at(speech[k + 1][1]) if measured and k + 1 < len(speech) else clock.at(s + n)
        turns.append(
            Turn(
                label=t.label,
                start=round(start, 2),
                end=round(max(end, start), 2),
                text="\n\n".join(t.paragraphs),
                line=t.line,
            )
        )
    return turns, ("measured" if measured else "estimated"), notes
