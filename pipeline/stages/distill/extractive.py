"""The offline distillation backend: the interviewer's whole questions + the expert's verbatim answers.

No model and no network. An interviewer turn that asks a question (the question sentences of
the turn, with the sentence before them when the question points back at it), followed by an
expert turn that really answers (not a counter-question, a one-liner or small talk), becomes a
question/answer pair. The answer is the expert's own words cut at a sentence boundary, and its
source quote is exactly that answer, verified with ``verify_quote`` (timestamps refined from
word timings). ``shape`` groups pairs into one-screen atoms, titles and types them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from pipeline.config import Settings
from pipeline.models import InterviewSource, Transcript
from pipeline.reporting import Reporter
from pipeline.stages.distill.windows import Turn, turns
from pipeline.transcripts.grounding import verify_quote

PROMPT = "extractive-v2"

#: Sentence ends: ., ! or ? (an ellipsis too) followed by space, or the end of the text.
_END = re.compile(r"(?:\.\.\.|…|[.!?])[\"')\]”’]*(?=\s|$)")
_ABBREV = re.compile(r"\b(?:e\.g|i\.e|etc|vs|Mr|Mrs|Dr|St|approx|incl)\.$", re.I)
_FILLER_START = re.compile(
    r"^(?:(?:so|and|but|or|okay|ok|well|now|yeah|yes|right|alright|all right|cool|great|oh|um|uh|hm+|mm-hm|"
    r"also|because|then|i mean|you know|like|anyway|sure|gotcha|interesting|wow|as a result|in that case|actually|"
    r"plus|besides|otherwise)\b[,.!]*\s+)+",
    re.I,
)
_NONSPEECH = re.compile(r"\s*\[(?:laughter|laughs|unintelligible[^\]]*|crosstalk|inaudible[^\]]*)\]", re.I)
_HEDGES = re.compile(r",?\s*\b(?:you know what I mean|if you will|you know|I mean|so to speak)\b,?", re.I)
#: Words that point back at something said in an earlier turn (no antecedent in the question itself).
BACK_REFERENCE = re.compile(
    r"^(?:it|that|this|they|those|these|he|she|them)\b|\b(?:like that|about that|that one|this one|do that|"
    r"did that|doing that|of that|with that|about this|about it|of this|to that|that part|that thing|same thing|"
    r"you just said|you mentioned|you said|that's why|like this|(?:does|did|is|was|would|will) (?:that|this|it)|"
    r"that (?:acronym|term|word|idea|approach|one|stuff|story|tool|thing))\b",
    re.I,
)
_SMALL_TALK_Q = re.compile(
    r"\b(?:go first|how are you|how's it going|welcome|pronounce|can you hear|are you there|where can (?:people|"
    r"listeners|folks) find|find you online|anything else you|before we (?:wrap|finish|go)|what's next for you|"
    r"thank(?:s| you)|introduce yourself|who are you|sound ok|ready\?|questions for me|answer your question|"
    r"did i get that right|is that right|am i right|makes sense\?|does that make sense|right\?$)",
    re.I,
)
_SMALL_TALK_A = re.compile(
    r"^(?:thank(?:s| you)|hello|hi\b|hey\b|happy to be here|glad to be here|it's a pleasure)", re.I
)
_FILLER_SENTENCE = re.compile(
    r"^(?:yeah|yes|right|exactly|sure|absolutely|okay|ok|mm-hm|oh|well|so|great question|good question|"
    r"that's (?:a )?(?:really |very )?(?:good|great|interesting) (?:question|point)|that's true|correct)\b",
    re.I,
)


@dataclass
class Pair:
    question: str
    answer: str
    source: InterviewSource
    asker: str
    expert: str
    keywords: list[str] = field(default_factory=list)

    @property
    def words(self) -> int:
        return len(self.question.split()) + len(self.answer.split())


def sentence_spans(text: str) -> list[tuple[int, int]]:
    """(start, end) offsets of the sentences of ``text`` (an abbreviation does not end one)."""
    spans: list[tuple[int, int]] = []
    start = 0
    for m in _END.finditer(text):
        if _ABBREV.search(text[start : m.end()]):
            continue
        if text[start : m.end()].strip():
            spans.append((start, m.end()))
        start = m.end()
    if text[start:].strip():
        spans.append((start, len(text)))
    out = []
    for s, e in spans:
        while s < e and text[s].isspace():
            s += 1
        out.append((s, e))
    return out


def sentences(text: str) -> list[str]:
    return [text[s:e] for s, e in sentence_spans(text)]


def _clean(sentence: str, names: frozenset[str]) -> str:
    """An interviewer's sentence without fillers, hedges, vocatives and non-speech."""
    s = _NONSPEECH.sub("", sentence)
    s = _HEDGES.sub("", s)
    s = re.sub(r"\s*(?:\.\.\.|…)\s*(?=\S)", ", ", s)  # a pause inside a sentence
    s = re.sub(r"\s*--\s*", ", ", s)
    s = re.sub(r"(?:\.\.\.|…)$", ".", s.strip())
    s = re.sub(r"\b(?:sort of|kind of) like\b\s*", "", s)
    for _ in range(3):
        before = s
        s = _FILLER_START.sub("", s).lstrip(",; ")
        m = re.match(r"^([A-Z][\w'-]+)(?:\s[A-Z][\w'-]+)?,\s+", s)
        if m and m.group(1).lower() in names:
            s = s[m.end() :]
        if s == before:
            break
    for name in names:  # "..., Matvey?" / "I'm wondering, Ildar, if ..."
        s = re.sub(rf",\s+{re.escape(name)},\s*", " ", s, flags=re.I)
        s = re.sub(rf",\s+{re.escape(name)}(?=[?,.])", "", s, flags=re.I)
    s = re.sub(r"\bthere's like\b", "there's", s, flags=re.I)
    s = re.sub(r",\s*,", ",", re.sub(r"\s+", " ", s)).strip(" ,")
    s = re.sub(r",\s*\?$", "?", s)
    return s[:1].upper() + s[1:] if s else s


def stands_alone(question: str) -> bool:
    """False when the question's first sentence points back at an earlier turn."""
    first = sentences(question)[0] if question else ""
    return not BACK_REFERENCE.search(first)


def question_of(text: str, names: frozenset[str] = frozenset()) -> str | None:
    """The interviewer's whole question: its closing question sentences, with the context they need.

    None when the turn asks nothing near its end, when the question is small talk, or when it
    cannot stand alone (it points at an earlier turn and the turn holds no sentence to explain it).
    """
    raw = sentences(text)
    cleaned = [_clean(s, names) for s in raw]
    # a tag question ("..., right?") before the real question is a statement
    cleaned = [re.sub(r",\s*right\?$", ".", c) if i < len(cleaned) - 1 else c for i, c in enumerate(cleaned)]
    keep = [i for i, s in enumerate(cleaned) if len(s.split()) >= 2]
    if not keep:
        return None
    asks = [i for i in keep if cleaned[i].endswith("?")]
    if not asks or asks[-1] < keep[-1] - 2:
        return None  # the turn ends with statements: the expert answers those, not a question
    last = asks[-1]
    first = last
    while first - 1 in asks or (first - 1 in keep and cleaned[first - 1].endswith("?")):
        first -= 1
    block = [cleaned[i] for i in range(first, last + 1) if i in keep]
    while block and not stands_alone(block[0]):
        prev = [i for i in keep if i < first]
        context = cleaned[prev[-1]] if prev else None
        if context and stands_alone(context) and not context.endswith("?") and 5 <= len(context.split()) <= 30:
            block.insert(0, context)
            break
        block.pop(0)
        first += 1
    if not block or not block[-1].endswith("?"):
        return None
    if len(" ".join(block).split()) < 8 and first - 1 in keep and not cleaned[first - 1].endswith("?"):
        context = cleaned[first - 1]
        if stands_alone(context) and 5 <= len(context.split()) <= 30:
            block.insert(0, context)
    while len(" ".join(block).split()) > 45 and len(block) > 1:
        block.pop(0)
        while block and not stands_alone(block[0]) and len(block) > 1:
            block.pop(0)
    question = " ".join(block)
    n = len(question.split())
    if not 7 <= n <= 45 or len(block[-1].split()) < 4 or not stands_alone(question) or _SMALL_TALK_Q.search(question):
        return None
    return question


def answer_of(text: str, max_words: int) -> str | None:
    """The expert's answer: a verbatim slice of the turn from its first real sentence to a sentence end.

    None when the turn is no answer: a one-liner, a counter-question, small talk, or a turn
    without a complete sentence.
    """
    spans = sentence_spans(text)
    while (
        spans
        and len(text[spans[0][0] : spans[0][1]].split()) <= 6
        and _FILLER_SENTENCE.match(text[spans[0][0] : spans[0][1]])
    ):
        spans = spans[1:]
    if not spans:
        return None
    full = [sp for sp in spans if _complete(text[sp[0] : sp[1]])]
    start = spans[0][0]
    chosen_end = None
    for _, e in full:
        if len(text[start:e].split()) <= max_words:
            chosen_end = e
        elif chosen_end is None and len(text[start:e].split()) <= max_words * 1.6:
            chosen_end = e
            break
        else:
            break
    if chosen_end is None:
        return None
    answer = text[start:chosen_end].strip()
    parts = sentences(answer)
    if len(answer.split()) < 25 or _SMALL_TALK_A.match(answer):
        return None
    questions = sum(1 for p in parts if p.rstrip("\"')”’").endswith("?"))
    if parts[0].rstrip("\"')”’").endswith("?") and len(parts) <= 2 or questions * 2 > len(parts):
        return None  # a counter-question
    return answer


def _complete(sentence: str) -> bool:
    """A sentence that ends properly (not trailing off with an ellipsis or a dash)."""
    s = sentence.rstrip("\"')]”’ ")
    return bool(s) and s[-1] in ".!?" and not s.endswith(("...", "…"))


def pairs(transcript: Transcript, settings: Settings, reporter: Reporter) -> list[Pair]:
    """Question/answer pairs: an interviewer's whole question, then the next expert turn's answer."""
    ts = turns(transcript)
    out: list[Pair] = []
    cfg = settings.distill
    names = frozenset(w.lower() for sp in transcript.speakers for w in sp.name.split())
    for i, turn in enumerate(ts[:-1]):
        if turn.role != "interviewer":
            continue
        question = question_of(turn.text, names)
        if question is None:
            continue
        nxt: Turn = ts[i + 1]
        if nxt.role != "expert":
            continue
        answer = answer_of(nxt.text, cfg.answer_max_words)
        if answer is None:
            continue
        g = verify_quote(
            transcript, nxt.name, nxt.start, nxt.end, answer, threshold=cfg.quote_threshold, slack_s=cfg.quote_slack_s
        )
        if not g.ok:
            reporter.warn(f"{transcript.interview}: answer at {nxt.start:.1f} s not grounded ({g.reason}); skipped")
            continue
        source = InterviewSource(
            interview=transcript.interview,
            speaker=nxt.name,
            start=float(g.start if g.start is not None else nxt.start),
            end=float(g.end if g.end is not None else nxt.end),
            quote=answer,
        )
        out.append(Pair(question, answer, source, turn.name, nxt.name))
    return out
