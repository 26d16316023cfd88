"""Raw speaker labels (SPEAKER_00, VTT voice names, "Gerhard") -> the people of interview.yaml.

Order of evidence: ``speaker_map`` in interview.yaml, then an exact name or alias, then a fuzzy
name match (rapidfuzz token-set ratio, so "Gerhard" finds "Gerhard Lazu" and "Lazu, Gerhard"
too). A label matching two people equally well is not guessed. Unmapped speakers keep their
label with role ``unknown``: distillation trusts only what experts said, so it ignores them.
Mapping always starts from the raw labels, so it can be re-run after interview.yaml changes.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

from pipeline.errors import InputError
from pipeline.models import Interview, Person, Speaker, Transcript

FUZZY_THRESHOLD = 85.0


@dataclass
class SpeakerReport:
    mapped: dict[str, str] = field(default_factory=dict)  # raw label -> person name
    how: dict[str, str] = field(default_factory=dict)  # raw label -> speaker_map|name|alias|fuzzy
    unmapped: list[str] = field(default_factory=list)
    ambiguous: dict[str, list[str]] = field(default_factory=dict)
    silent_people: list[str] = field(default_factory=list)  # people with no segment

    @property
    def warnings(self) -> list[str]:
        out = []
        for label in self.unmapped:
            extra = f" (could be {' or '.join(self.ambiguous[label])})" if label in self.ambiguous else ""
            out.append(
                f"speaker '{label}' matches nobody in interview.yaml{extra}: role 'unknown', "
                f"distillation ignores what they said. Add them to people (or aliases) or to speaker_map."
            )
        for name in self.silent_people:
            out.append(f"{name} (in interview.yaml) says nothing in the transcript; check names or speaker_map.")
        return out

    def __str__(self) -> str:
        parts = [f"{label} -> {name} ({self.how[label]})" for label, name in self.mapped.items() if label != name]
        same = sum(1 for label, name in self.mapped.items() if label == name)
        if same:
            parts.append(f"{same} by name")
        if self.unmapped:
            parts.append(f"unmapped: {', '.join(self.unmapped)}")
        return "speakers: " + ("; ".join(parts) if parts else "none")


def _norm(name: str) -> str:
    """Case, spacing and Unicode composition do not make two names different."""
    return " ".join(unicodedata.normalize("NFC", name).casefold().split())


def _raw_label(sp: Speaker) -> str:
    return sp.label if sp.label else sp.name


def resolve(label: str, interview: Interview, *, path: Path | None = None) -> tuple[Person | None, str, list[str]]:
    """(person or None, how, ambiguous candidates) for one raw label."""
    people = interview.people
    by_name = {_norm(p.name): p for p in people}
    by_alias = {_norm(a): p for p in people for a in p.aliases}
    if label in interview.speaker_map:
        target = interview.speaker_map[label]
        person = by_name.get(_norm(target)) or by_alias.get(_norm(target))
        if person is None:
            raise InputError(
                f"speaker_map maps '{label}' to '{target}', who is not in people",
                f"Add '{target}' to people (name and role) or fix the name; people: "
                + (", ".join(p.name for p in people) or "none"),
                path=path,
            )
        return person, "speaker_map", []
    key = _norm(label)
    if key in by_name:
        return by_name[key], "name", []
    if key in by_alias:
        return by_alias[key], "alias", []
    if len(key) < 3 or not people:
        return None, "", []
    from rapidfuzz import fuzz, utils

    scores: dict[str, float] = {}
    for p in people:
        best = max(fuzz.token_set_ratio(key, n, processor=utils.default_process) for n in (p.name, *p.aliases))
        scores[p.name] = best
    ranked = sorted(scores.items(), key=lambda kv: -kv[1])
    top_name, top = ranked[0]
    if top < FUZZY_THRESHOLD:
        return None, "", []
    tied = [n for n, s in ranked if s == top]
    if len(tied) > 1:
        return None, "", tied
    return next(p for p in people if p.name == top_name), "fuzzy", []


def map_speakers(
    transcript: Transcript, interview: Interview, *, path: Path | None = None
) -> tuple[Transcript, SpeakerReport]:
    """Give every speaker a person and role; labels of one person are merged into one speaker."""
    report = SpeakerReport()
    new_speakers: list[Speaker] = []
    by_person: dict[str, Speaker] = {}
    repoint: dict[str, str] = {}
    for sp in transcript.speakers:
        label = _raw_label(sp)
        person, how, tied = resolve(label, interview, path=path)
        if person is None:
            report.unmapped.append(label)
            if tied:
                report.ambiguous[label] = tied
            out = Speaker(id=sp.id, name=label, role="unknown", label=label)
            new_speakers.append(out)
            repoint[sp.id] = out.id
            continue
        report.mapped[label] = person.name
        report.how[label] = how
        if person.name in by_person:  # a second label of the same person
            repoint[sp.id] = by_person[person.name].id
            continue
        out = Speaker(id=sp.id, name=person.name, role=person.role, label=label)
        by_person[person.name] = out
        new_speakers.append(out)
        repoint[sp.id] = out.id
    # words may carry a speaker too (whisperX, word-level diarisation): raw label or old id -> new id
    by_label = {_raw_label(sp): repoint[sp.id] for sp in transcript.speakers}

    def _word_speaker(value: str | None) -> str | None:
        if value is None:
            return None
        return repoint.get(value) or by_label.get(value, value)

    segments = [
        seg.model_copy(
            update={
                "speaker": repoint.get(seg.speaker, seg.speaker),
                "words": [w.model_copy(update={"speaker": _word_speaker(w.speaker)}) for w in seg.words]
                if any(w.speaker for w in seg.words)
                else seg.words,
            }
        )
        for seg in transcript.segments
    ]
    used = {seg.speaker for seg in segments}
    new_speakers = [sp for sp in new_speakers if sp.id in used or not segments]
    report.silent_people = [p.name for p in interview.people if p.name not in by_person]
    return transcript.model_copy(update={"speakers": new_speakers, "segments": segments}), report
