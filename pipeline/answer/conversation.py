"""Follow-up questions: turn "and how do I fix that?" into something retrieval can answer.

History is the earlier turns in the OpenAI shape, ``[{"role": "user"|"assistant", "content":
...}]`` (an assistant turn may carry ``citations``: ``[{"atom_id": ...}]`` or ids). With an LLM,
the follow-up is rewritten into a standalone question by one small request (counted). Without
one, a follow-up (a pronoun, "and ...", or almost no topic words of its own) is searched together
with the earlier user turns, and when it is elliptic (no topic word at all: "how do I fix it?")
the atoms the conversation already cited come first; an elliptic follow-up to questions the
knowledge base could not answer gets "I don't know" too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pipeline.answer.answerability import GENERIC, content_words

#: Words that ask about something without naming it.
ANAPHORA = frozenset("it its that this these those them they there one same such".split())
OPENERS = ("and ", "and,", "what about", "how about", "also", "but ", "so ", "then ", "or ")
MAX_EARLIER = 2  # user turns combined with an offline follow-up
CITED = re.compile(r"\[([a-z0-9][a-z0-9-]{0,119})\]")

REWRITE_PROMPT = """Rewrite the user's last message as one standalone question that can be understood
without the conversation. Keep the user's words and product names; add only what the earlier turns
say the message refers to. Reply with the question only."""


#: How an uncertain answer starts (``core`` answers with it), after an optional "Answering: ..." line.
IDK = "I don't know: the knowledge base has no answer to this question."
_UNANSWERED = re.compile(r"(?:\A|\n)\s*I don't know\b")


@dataclass
class Turn:
    role: str
    content: str
    citations: list[str] = field(default_factory=list)
    unanswered: bool = False  # an assistant turn that said "I don't know" (or came with uncertain: true)


def parse_history(history: list[Any] | None) -> list[Turn]:
    """Turns from ``[{"role", "content", "citations"?}]`` (dicts or objects); others are skipped."""
    turns = []
    for item in history or []:
        get = item.get if isinstance(item, dict) else lambda k, d=None, i=item: getattr(i, k, d)
        role = str(get("role", "") or "")
        content = get("content", "")
        if isinstance(content, list):  # OpenAI content parts
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
        if role not in ("user", "assistant") or not str(content or "").strip():
            continue
        cited = []
        for c in get("citations", None) or []:
            cited.append(str(c.get("atom_id") if isinstance(c, dict) else c))
        text = str(content).strip()
        unanswered = role == "assistant" and (bool(get("uncertain", False)) or bool(_UNANSWERED.search(text)))
        turns.append(Turn(role, text, [c for c in cited if c], unanswered))
    return turns


def answered_user_turns(turns: list[Turn]) -> list[str]:
    """The user turns the knowledge base answered: a question it said "I don't know" to is not
    what a follow-up refers to (its words, e.g. an uncovered product, would only mislead search
    and read as a topic the knowledge base lacks). All user turns when none was answered."""
    return _answered(turns) or [t.content for t in turns if t.role == "user"]


def none_answered(turns: list[Turn]) -> bool:
    """There were user turns and every one got "I don't know" (where ``answered_user_turns`` falls back)."""
    return any(t.role == "user" for t in turns) and not _answered(turns)


def _answered(turns: list[Turn]) -> list[str]:
    """User turns whose reply (if any yet) was not "I don't know"."""
    return [
        t.content
        for i, t in enumerate(turns)
        if t.role == "user"
        and not (i + 1 < len(turns) and turns[i + 1].role == "assistant" and turns[i + 1].unanswered)
    ]


def cited_atoms(turns: list[Turn]) -> list[str]:
    """Atom ids the assistant cited, most recent turn first (``citations`` and ``[atom-id]`` markers)."""
    out: list[str] = []
    for turn in reversed(turns):
        if turn.role != "assistant":
            continue
        for atom_id in turn.citations + CITED.findall(turn.content):
            if atom_id not in out:
                out.append(atom_id)
    return out


def topic_words(question: str, index: Any) -> list[str]:
    return [w for w, _ in content_words(question, index) if w.lower() not in GENERIC]


def is_elliptic(question: str, index: Any) -> bool:
    """No topic word of its own: it can only mean what the conversation was about."""
    return not topic_words(question, index)


def is_follow_up(question: str, index: Any) -> bool:
    q = question.strip().lower()
    words = set(re.findall(r"[a-z']+", q))
    return bool(words & ANAPHORA) or q.startswith(OPENERS) or len(topic_words(question, index)) <= 2


@dataclass
class Standalone:
    """What to search for and which question the answer says it answers."""

    search: str
    answered: str
    elliptic: bool = False
    prefer: list[str] = field(default_factory=list)  # atoms cited earlier, to put first
    #: an elliptic follow-up ("how do I fix it?") to questions all answered "I don't know": it asks about
    #: a topic the knowledge base already said it lacks, and its own generic words must not make that
    #: topic look answerable (offline, answered "I don't know" too)
    after_refusal: bool = False
    tokens_in: int = 0
    tokens_out: int = 0
    requests: int = 0


def standalone(question: str, turns: list[Turn], index: Any, llm: Any | None = None) -> Standalone:
    """The question to answer given the earlier ``turns`` (see the module doc)."""
    users = [t.content for t in turns if t.role == "user"]
    if not users:
        return Standalone(question, question)
    if llm is not None:
        return _rewrite(question, turns, llm)
    if not is_follow_up(question, index):
        return Standalone(question, question)
    replied = answered_user_turns(turns)
    earlier = [u for u in reversed(replied) if not is_elliptic(u, index)][:MAX_EARLIER]
    earlier = earlier or replied[-1:]
    topic = earlier[-1] if len(earlier) > 1 and is_follow_up(earlier[0], index) else earlier[0]
    search = " ".join([question, *earlier])
    elliptic = is_elliptic(question, index)
    answered = f"{question.rstrip()} (about: {topic.rstrip()})"
    prefer = cited_atoms(turns) if elliptic else []
    return Standalone(search, answered, elliptic, prefer, after_refusal=elliptic and none_answered(turns))


def _rewrite(question: str, turns: list[Turn], llm: Any) -> Standalone:
    lines = [f"{t.role}: {_clip(t.content)}" for t in turns[-6:]]
    messages = [
        {"role": "system", "content": REWRITE_PROMPT},
        {"role": "user", "content": "Conversation:\n" + "\n".join(lines) + f"\n\nLast message: {question}"},
    ]
    result = llm.chat(messages)
    text = " ".join(str(result.text or "").split()).strip().strip('"')
    tin, tout = int(result.tokens_in or 0), int(result.tokens_out or 0)
    if not text:
        return Standalone(question, question, tokens_in=tin, tokens_out=tout, requests=1)
    return Standalone(text, text, tokens_in=tin, tokens_out=tout, requests=1)


def _clip(text: str, limit: int = 600) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit] + " …"
