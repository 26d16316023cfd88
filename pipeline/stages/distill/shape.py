"""Shaping extractive pairs into atoms a reviewer can accept: one topic, one screen, a plain title, a type.

Consecutive pairs on one topic (shared keywords, rapidfuzz) are grouped until the atom holds
about one screen (400-800 words); a group still short is merged with its closest neighbour.
Each atom is titled by its opening question (or, when that is long, the topic's most frequent
phrase as the expert said it), typed where the expert's words say it (numbered steps ->
procedure, an error message -> error, a command or flag -> interface-input, "don't ..." ->
pitfall, handling a problem -> troubleshooting-tip, else faq), and the type's sections are
filled with the expert's own sentences. What kb could not fill is said in ``needs``.
"""

from __future__ import annotations

import math
import re
from collections import Counter

from rapidfuzz import fuzz

from pipeline.config import Settings
from pipeline.models import TYPE_SECTIONS, Interview, Transcript
from pipeline.reporting import Reporter
from pipeline.stages.distill.extractive import PROMPT, Pair, pairs, sentences
from pipeline.stages.distill.writer import Draft

_WORD = re.compile(r"[A-Za-z][A-Za-z0-9'+#.-]*[A-Za-z0-9+#]|[A-Za-z]")
STOPWORDS = frozenset(
    """a about above across actual actually after again against ago all almost along already also although always
    am among an and another any anybody anyone anything anyway anywhere are aren't around as ask asked asking at
    away back bad basically be became because become becomes been before being believe below best better between
    big bit both bring brought but by call called came can can't cannot case certain certainly change changed
    changes come comes coming completely could couldn't course curious day days deal describe did didn't
    different do does doesn't doing don't done down during each easy either else end enough entire even ever
    every everybody everyone everything exactly example fact far feel felt few find fine first for found from
    full fun further gave get gets getting give given gives giving go goes going gone gonna good got gotten great
    guess had hadn't half happen happened happens happy hard has hasn't have haven't having he he's hear heard
    help her here here's hers herself hey him himself his hmm hope how however huge i i'd i'll i'm i've idea if
    imagine important in instead interesting into is isn't it it'd it'll it's its itself just keep kind knew
    know known knows large last later least less let let's life like likely little long look looked looking
    looks lot lots love made main make makes making man many may maybe me mean means meant might mind more most
    much must my myself need needed needs never new next nice no nobody none nor not nothing now obviously of
    off often oh ok okay old on once one ones only open or other others our ours ourselves out over own part
    people perhaps person place point pretty probably problem pull put quite rather read real really reason
    right run running said same saw say saying says see seeing seem seems seen set several she she's short
    should show side since small so some somebody somehow someone something sometimes somewhat somewhere sort
    sound sounds speak start started stuff such super sure take taken takes taking talk talked talking tell
    than thank thanks that that'll that's the their theirs them themselves then there there's these they
    they'd they'll they're they've thing things think thinking thought three through time times to today
    together told too took top totally toward tried true try trying turn two uh um under understand until up
    upon us use used useful uses using usually very want wanted wants was wasn't way ways we we'd we'll we're
    we've well went were weren't what what's whatever when where whether which while who who's whole whom whose
    why will with within without won't wonder word words work worked works world would wouldn't wow yeah year
    years yes yet you you'd you'll you're you've your yours yourself yourselves
    zero four five six seven eight nine ten hundred hundreds thousand thousands million millions billion billions
    second seconds minute minutes hour hours this mine able anymore began chance consider wrong""".split()
)

#: Body words of one screen (DESIGN.md): the FAQ words aimed at leave room for the context and sections.
SCREEN_MIN, SCREEN_MAX = 400, 800
FAQ_TARGET_MIN, FAQ_TARGET_MAX = 360, 640
_NAME = re.compile(
    r"(?<![.!?]\s)(?<!^)\b([A-Z][A-Za-z0-9]*[A-Z0-9][A-Za-z0-9]*|[A-Z][a-z]+[A-Z][A-Za-z]*|[A-Z]{2,}[a-z]?)\b"
)


def _ok_word(w: str) -> bool:
    lw = w.lower().strip("'.")
    return len(lw) >= 3 and lw not in STOPWORDS and not lw.isdigit() and not lw.endswith(("ly", "'s", "n't"))


def _keywords(pairs_: list[Pair], top: int = 8, exclude: frozenset[str] = frozenset()) -> None:
    """Each pair's topic words: frequent, rarer across pairs, named in the question, or tool-like names."""
    docs = [
        Counter(
            w.lower() for w in _WORD.findall(p.question + " " + p.answer) if _ok_word(w) and w.lower() not in exclude
        )
        for p in pairs_
    ]
    df = Counter(w for d in docs for w in d)
    n = len(docs)
    for p, d in zip(pairs_, docs, strict=True):
        qwords = {w.lower() for w in _WORD.findall(p.question) if _ok_word(w)}
        names = {w.lower() for w in _NAME.findall(p.question + " " + p.answer)}
        scored = {
            w: c * (2.0 if w in qwords else 1.0) * (2.0 if w in names else 1.0) * math.log((1 + n) / (1 + df[w]) + 1.5)
            for w, c in d.items()
        }
        p.keywords = [w for w, _ in sorted(scored.items(), key=lambda kv: (-kv[1], kv[0]))[:top]]


def _words(members: list[Pair]) -> int:
    return sum(p.words for p in members)


def _similarity(a: list[Pair], b: list[Pair]) -> float:
    ka = " ".join(dict.fromkeys(k for p in a for k in p.keywords[:5]))
    kb = " ".join(dict.fromkeys(k for p in b for k in p.keywords[:5]))
    return fuzz.token_set_ratio(ka, kb)


def group(pairs_: list[Pair], threshold: float, cap: int, exclude: frozenset[str] = frozenset()) -> list[list[Pair]]:
    """Consecutive pairs on one topic, up to one screen; short groups then join their closest neighbour.

    The conversation's order is kept: a pair joins the group before it when they share enough
    keywords (or that group is still short of a screen and they share some), else it starts a group.
    """
    _keywords(pairs_, exclude=exclude)
    groups: list[list[Pair]] = []
    for p in pairs_:
        if groups:
            last = groups[-1]
            fits = len(last) < cap and _words(last) + p.words <= FAQ_TARGET_MAX
            sim = _similarity(last, [p])
            if fits and (sim >= threshold or (_words(last) < FAQ_TARGET_MIN and sim >= threshold * 0.6)):
                last.append(p)
                continue
        groups.append([p])
    changed = True
    while changed:
        changed = False
        for i, g in enumerate(groups):
            if _words(g) >= FAQ_TARGET_MIN:
                continue
            options = [j for j in (i - 1, i + 1) if 0 <= j < len(groups)]
            options = [
                j
                for j in options
                if _words(groups[j]) + _words(g) <= FAQ_TARGET_MAX and len(groups[j]) + len(g) <= cap + 2
            ]
            if not options:
                continue
            j = max(options, key=lambda k: _similarity(groups[k], g))
            lo, hi = min(i, j), max(i, j)
            groups[lo : hi + 1] = [groups[lo] + groups[hi]]
            changed = True
            break
    return groups


# ---------------------------------------------------------------------------------------------
# titles


def _display_forms(pairs_: list[Pair]) -> dict[str, str]:
    """The most common spelling of each word as written (keeps DNS, Kubernetes, PostgreSQL)."""
    forms: dict[str, Counter[str]] = {}
    for p in pairs_:
        for w in _WORD.findall(p.question + " " + p.answer):
            forms.setdefault(w.lower(), Counter())[w] += 1
    return {k: c.most_common(1)[0][0] for k, c in forms.items()}


def topic_phrase(members: list[Pair], exclude: frozenset[str] = frozenset()) -> str:
    """The group's most frequent two-word phrase as spoken ("error budgets"), else its top keyword."""
    counts: Counter[str] = Counter()
    spelled: dict[str, Counter[str]] = {}
    for p in members:
        for sentence in sentences(p.question + " " + p.answer):
            ws = _WORD.findall(sentence)
            for a, b in zip(ws, ws[1:], strict=False):
                if _ok_word(a) and _ok_word(b) and a.lower() not in exclude and b.lower() not in exclude:
                    key = f"{a.lower()} {b.lower()}"
                    counts[key] += 1
                    spelled.setdefault(key, Counter())[f"{a} {b}"] += 1
    if counts and counts.most_common(1)[0][1] >= 2:
        key = counts.most_common(1)[0][0]
        phrase = spelled[key].most_common(1)[0][0]
    else:
        score: Counter[str] = Counter()
        for p in members:
            for rank, k in enumerate(p.keywords):
                score[k] += len(p.keywords) - rank
        forms = _display_forms(members)
        phrase = forms.get(score.most_common(1)[0][0], score.most_common(1)[0][0]) if score else "Interview notes"
    return phrase[:1].upper() + phrase[1:]


def title_of(members: list[Pair], exclude: frozenset[str]) -> str:
    """The opening question when it is short enough to read as a title, else the topic phrase."""
    for p in members[:2]:
        if len(p.question.split()) <= 14 and len(sentences(p.question)) == 1:
            return p.question
    return topic_phrase(members, exclude)


# ---------------------------------------------------------------------------------------------
# types and sections from the expert's words

_ORDINAL = re.compile(
    r"^(?:\w+,\s+)?(?:first(?:ly)?|second(?:ly)?|third(?:ly)?|then|next|after that|finally|lastly|step \w+)\b", re.I
)
_ERROR_MSG = re.compile(
    r"[\"“`'][^\"”`']{0,80}\b(?:error|failed|fails|exception|denied|timed out|timeout|not found|panic|refused)\b[^\"”`']{0,80}[\"”`']",
    re.I,
)
_FLAG = re.compile(r"(?<![\w-])--[a-z][\w-]+|`[^`]+`")
_DONT = re.compile(r"\b(?:don't|do not|never|avoid|shouldn't|should not|stop doing)\b", re.I)
_ADVICE = re.compile(r"\b(?:you|your|we|teams?|people)\b", re.I)
_NOT_ADVICE = re.compile(
    r"\b(?:don't|do not|never) (?:know|think|have|remember|see|care|understand|want|need|really)\b", re.I
)
_HANDLING_Q = re.compile(
    r"\b(?:how|what)\b.*\b(?:do|should|would|can|did)\b.*\b(?:when|if|fix|debug|handle|deal with|troubleshoot|respond|recover)\b",
    re.I,
)
_PROBLEM = re.compile(
    r"\b(?:incident|outage|fail\w*|broke\w*|break\w*|error\w*|alert\w*|slow\w*|down|page[ds]?|wrong)\b", re.I
)

SECTION_CUES: dict[str, dict[str, re.Pattern[str]]] = {
    "error": {
        "What it means": re.compile(r"\b(?:means?|meaning|is when|tells you|says)\b", re.I),
        "Common causes": re.compile(r"\b(?:because|caused?|due to|happens when|usually|root cause|the reason)\b", re.I),
        "How to resolve": re.compile(
            r"\b(?:fix|solve|resolve|restart|you (?:need|have|should|can)|make sure|try|set|run)\b", re.I
        ),
    },
    "procedure": {},
    "interface-input": {
        "What it is": _FLAG,
        "Accepted values": re.compile(r"\b(?:values?|set (?:it )?to|either|options?)\b", re.I),
        "Default": re.compile(r"\bdefault\w*\b", re.I),
        "Effect": re.compile(r"\b(?:it will|makes?|so that|effect|changes?|turns? on|turns? off)\b", re.I),
        "Example": re.compile(r"\b(?:for example|for instance|like|e\.g\.)\b", re.I),
    },
    "pitfall": {
        "What not to do": _DONT,
        "Why": re.compile(r"\b(?:because|otherwise|the problem|risk|end up|what happens)\b", re.I),
        "What to do instead": re.compile(r"\b(?:instead|rather|better|recommend|should|what we do)\b", re.I),
    },
    "troubleshooting-tip": {
        "Symptom": re.compile(r"\b(?:when|if|notice|see|alert\w*|slow\w*|fail\w*|down|broke\w*|page[ds]?)\b", re.I),
        "Tip": re.compile(r"\b(?:should|try|recommend|make sure|the way|what we do|helps?|best|better)\b", re.I),
    },
}


def infer_type(members: list[Pair]) -> tuple[str, str]:
    """The atom type the expert's words say, and why (for the reviewer)."""
    answers = [p.answer for p in members]
    text = " ".join(answers)
    for a in answers:
        steps = [s for s in sentences(a) if _ORDINAL.match(s)]
        if len(steps) >= 3:
            return "procedure", f"an answer walks through {len(steps)} ordered steps"
    if _ERROR_MSG.search(text):
        return "error", f"the expert quotes an error message ({_ERROR_MSG.search(text).group(0)[:60]})"  # type: ignore[union-attr]  # the caller matched _ERROR_MSG on this text first
    flags = set(_FLAG.findall(text))
    if flags:
        return "interface-input", f"the expert names a command or flag ({sorted(flags)[0][:40]})"
    said = [s for a in answers for s in sentences(a)]
    donts = [s for s in said if _DONT.search(s) and _ADVICE.search(s) and not _NOT_ADVICE.search(s)]
    if len(donts) >= 3 and len(donts) * 7 >= len(said):
        return "pitfall", f"{len(donts)} sentences say what not to do"
    handling = [p for p in members if _HANDLING_Q.search(p.question) and _PROBLEM.search(p.question + " " + p.answer)]
    if handling:
        return "troubleshooting-tip", "a question asks how to handle a problem"
    return "faq", ""


def fill_sections(
    atom_type: str, members: list[Pair], per_section: int = 3, budget: int = 200
) -> list[tuple[str, str]]:
    """The type's sections, each filled with the expert's own sentences (each used once; ``budget`` words in all)."""
    if atom_type == "faq":
        return []
    pool = [s for p in members for s in sentences(p.answer) if len(s.split()) >= 5]
    if atom_type == "procedure":
        for p in members:
            steps = [s for s in sentences(p.answer) if _ORDINAL.match(s)]
            if len(steps) >= 3:
                return [("Steps", "\n".join(f"{i}. {s}" for i, s in enumerate(steps[:8], 1)))]
    used: set[str] = set()
    out: list[tuple[str, str]] = []
    for heading in TYPE_SECTIONS[atom_type]:
        cue = SECTION_CUES.get(atom_type, {}).get(heading)
        if cue is None:
            continue
        picked: list[str] = []
        for s in pool:
            if len(picked) < per_section and s not in used and cue.search(s) and len(s.split()) <= budget:
                picked.append(s)
                budget -= len(s.split())
        used.update(picked)
        if picked:
            out.append((heading, "\n".join(f"- {s}" for s in picked)))
    return out


# ---------------------------------------------------------------------------------------------
# drafts


def _needs(atom_type: str, why: str, sections: list[tuple[str, str]], words: int) -> list[str]:
    needs: list[str] = []
    if atom_type != "faq":
        needs.append(f"type: {atom_type} because {why}; confirm it")
    have = {h for h, _ in sections}
    for heading in TYPE_SECTIONS[atom_type]:
        if heading != "FAQ" and heading not in have:
            needs.append(f"{heading}: not said in the interview; write it or change the type")
    if words < SCREEN_MIN:
        needs.append(
            f"length: about {words} words, below one screen ({SCREEN_MIN}); add context or merge it with a related atom"
        )
    return needs


def _summary(members: list[Pair]) -> str:
    """The expert's first plain sentence of the topic (no filler opening, no trailing off)."""
    said = [s for p in members for s in sentences(p.answer)]
    for s in said:
        if (
            len(s.split()) >= 8
            and "--" not in s
            and "..." not in s
            and not re.match(r"^(?:yeah|so|well|oh|i mean|right)\b", s, re.I)
        ):
            return s
    return said[0]


def drafts(transcript: Transcript, interview: Interview | None, settings: Settings, reporter: Reporter) -> list[Draft]:
    """Draft atoms for one transcript (empty when it has no interviewer questions answered by an expert)."""
    found = pairs(transcript, settings, reporter)
    if not found:
        return []
    title = interview.title if interview else transcript.interview
    names = {sp.name for sp in transcript.speakers} | {p.name for p in (interview.people if interview else [])}
    exclude = frozenset(w.lower() for n in names for w in _WORD.findall(n))
    out: list[Draft] = []
    used: set[str] = set()
    for members in group(found, settings.distill.topic_threshold, settings.distill.pairs_per_atom, exclude):
        label = title_of(members, exclude)
        atom_title, n = label, 2
        while atom_title.lower() in used:
            atom_title = f"{label} (part {n})"
            n += 1
        used.add(atom_title.lower())
        atom_type, why = infer_type(members)
        sections = fill_sections(atom_type, members, budget=max(0, SCREEN_MAX - 60 - _words(members)))
        experts = " and ".join(sorted({p.expert for p in members}))
        askers = " and ".join(sorted({p.asker for p in members}))
        context = (
            f'{experts} answering {askers} in "{title}" (the answers are verbatim from the transcript; '
            "edit freely, kb will not overwrite your changes)."
        )
        words = len(context.split()) + _words(members) + sum(len(t.split()) + 2 for _, t in sections) + 2 * len(members)
        topic = [k for k in dict.fromkeys(k for p in members for k in p.keywords[:3])][:4]
        first = _summary(members)
        out.append(
            Draft(
                type=atom_type,
                title=atom_title,
                summary=first if len(first) <= 200 else first[:199].rsplit(" ", 1)[0] + "…",
                context=context,
                sections=sections,
                faq=[(p.question, p.answer) for p in members],
                tags=sorted(topic),
                sources=[p.source for p in members],
                kind="extractive",
                prompt=PROMPT,
                needs=_needs(atom_type, why, sections, words),
            )
        )
    return out
