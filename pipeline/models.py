"""The data contracts: atoms, interviews, transcripts and the bundle manifest (pydantic v2).

JSON Schemas in ``schemas/`` are generated from these models (``kb schemas``), so editors and
other services can validate files without Python. Change a model, regenerate the schemas.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Literal, Union, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

# --------------------------------------------------------------------------------------------
# vocabularies

AtomType = Literal[
    "error",
    "procedure",
    "playbook",
    "interface-input",
    "troubleshooting-tip",
    "config-template",
    "pitfall",
    "faq",
]
Status = Literal["draft", "in-review", "validated", "archived"]
Role = Literal["interviewer", "expert"]
GeneratorKind = Literal["llm", "extractive", "import", "human"]
# The same vocabularies as tuples (one source of truth: the Literals the schemas are made from).
ATOM_TYPES: tuple[str, ...] = get_args(AtomType)
STATUSES: tuple[str, ...] = get_args(Status)
ROLES: tuple[str, ...] = get_args(Role)
GENERATOR_KINDS: tuple[str, ...] = get_args(GeneratorKind)
SpeakerRole = Literal["interviewer", "expert", "other", "unknown"]

#: The ``##`` sections each atom type must have, in order (``kb new`` writes them, ``kb check``
#: expects them). ``FAQ`` is required for every type.
TYPE_SECTIONS: dict[str, tuple[str, ...]] = {
    "error": ("What it means", "Common causes", "How to resolve", "FAQ"),
    "procedure": ("Steps", "FAQ"),
    "playbook": ("Symptoms", "Triage", "Actions", "FAQ"),
    "interface-input": ("What it is", "Accepted values", "Default", "Effect", "Example", "FAQ"),
    "troubleshooting-tip": ("Symptom", "Tip", "FAQ"),
    "config-template": ("Template", "FAQ"),
    "pitfall": ("What not to do", "Why", "What to do instead", "FAQ"),
    "faq": ("FAQ",),
}

#: Atom ids and interview ids: lowercase slug, no path separators, no dots-only names.
ID_PATTERN = r"^[a-z0-9][a-z0-9-]{0,119}$"
_ID_RE = re.compile(ID_PATTERN)


def is_valid_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


class _Strict(BaseModel):
    """Unknown fields are errors: a typo in front matter must not be silently ignored."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------------------------
# atoms


class InterviewSource(_Strict):
    """A verbatim quote of what a speaker said, with the seconds of the recording it spans."""

    interview: str = Field(description="Interview id (folder name under interviews/).")
    speaker: str = Field(description="Name of the person who said it (an expert).")
    start: float = Field(ge=0, description="Start, in seconds from the start of the recording.")
    end: float = Field(ge=0, description="End, in seconds from the start of the recording.")
    quote: str = Field(min_length=1, description="The speaker's own words, verbatim.")

    @model_validator(mode="after")
    def _end_after_start(self) -> InterviewSource:
        if self.end < self.start:
            raise ValueError(f"end ({self.end}) is before start ({self.start})")
        return self


class DocumentSource(_Strict):
    """A section of an existing document the atom was cut from (``kb import-docs``)."""

    document: str = Field(description="Path of the document, relative to the imported folder.")
    heading: str = Field(description="The exact heading text of the section.")
    line: int | None = Field(default=None, ge=1, description="Line of the heading in the document.")


Source = Annotated[Union[InterviewSource, DocumentSource], Field(union_mode="left_to_right")]


class Generator(_Strict):
    """What produced the atom, and what it cost. ``content_hash`` detects human edits."""

    kind: GeneratorKind
    model: str | None = None
    prompt: str | None = Field(default=None, description="Prompt id and version, e.g. distill-v1.")
    tokens_in: int = Field(default=0, ge=0)
    tokens_out: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    content_hash: str | None = Field(
        default=None,
        description="sha256 of the atom as the pipeline wrote it; differs once a person edits it.",
    )


class AtomMeta(_Strict):
    """The YAML front matter of an atom."""

    id: str = Field(pattern=ID_PATTERN, description="Equals the file name without .md.")
    title: str = Field(min_length=1)
    type: AtomType
    summary: str = Field(default="", description="One line: what the atom is for.")
    author: str | None = None
    created: dt.date
    updated: dt.date | None = None
    version: int = Field(default=1, ge=1)
    status: Status = "draft"
    reviewed_by: list[str] = Field(default_factory=list)
    tags: list[str] = Field(default_factory=list)
    related: list[str] = Field(default_factory=list, description="Titles of related atoms.")
    prerequisites: list[str] = Field(default_factory=list)
    sources: list[Source] = Field(default_factory=list)
    config_schema: str | None = Field(
        default=None,
        description="config-template only: name of schemas/configs/<name>.json to validate against.",
    )
    generator: Generator | None = None

    @field_validator("tags", "related", "prerequisites", "reviewed_by")
    @classmethod
    def _no_blank_items(cls, items: list[str]) -> list[str]:
        for item in items:
            if not str(item).strip():
                raise ValueError("list holds an empty item")
        return items


class FAQ(BaseModel):
    """A question and its answer, parsed from the atom's ``## FAQ`` section."""

    question: str
    answer: str
    line: int | None = Field(default=None, description="Line of the question in the file.")


class Section(BaseModel):
    heading: str
    level: int
    line: int
    text: str


class Atom(BaseModel):
    """An atom file: front matter, Markdown body, and what was parsed from the body."""

    meta: AtomMeta
    body: str
    faq: list[FAQ] = Field(default_factory=list)
    sections: list[Section] = Field(default_factory=list)
    path: str | None = None


# --------------------------------------------------------------------------------------------
# interviews


class Person(_Strict):
    name: str = Field(min_length=1)
    role: Role
    title: str | None = Field(default=None, description="Job title, e.g. 'SRE lead'.")
    organisation: str | None = None
    aliases: list[str] = Field(default_factory=list, description="Other names in transcripts.")


class Consent(_Strict):
    recorded: bool = Field(default=False, description="The people agreed to be recorded.")
    publish: bool = Field(default=False, description="Quotes may appear in published atoms.")
    notes: str | None = None


class MediaRef(_Strict):
    """A recording or an existing transcript registered with ``kb add``."""

    kind: Literal["recording", "transcript"]
    file: str = Field(description="Path relative to the interview folder, or absolute.")
    sha256: str
    bytes: int = Field(ge=0)
    copied: bool = Field(default=True, description="False when referenced in place (large files).")
    format: str | None = Field(default=None, description="vtt, srt, whisper-json, text, wav, ...")


class Interview(_Strict):
    """``interviews/<id>/interview.yaml``."""

    id: str = Field(pattern=ID_PATTERN)
    title: str = Field(min_length=1)
    date: dt.date
    language: str = "en"
    people: list[Person] = Field(default_factory=list)
    consent: Consent = Field(default_factory=Consent)
    topics: list[str] = Field(default_factory=list)
    vocabulary: list[str] = Field(default_factory=list, description="Terms to hint to ASR (initial prompt / hotwords).")
    speaker_map: dict[str, str] = Field(
        default_factory=dict, description="Raw speaker label (SPEAKER_00, VTT name) -> person name."
    )
    num_speakers: int | None = Field(default=None, ge=1)
    min_speakers: int | None = Field(default=None, ge=1)
    max_speakers: int | None = Field(default=None, ge=1)
    media: list[MediaRef] = Field(default_factory=list)
    attribution: str | None = Field(default=None, description="Origin and licence of the material.")


# --------------------------------------------------------------------------------------------
# transcripts


class Word(BaseModel):
    start: float | None = None
    end: float | None = None
    text: str
    score: float | None = None
    speaker: str | None = None


class Segment(BaseModel):
    id: int = Field(ge=0)
    start: float = Field(ge=0)
    end: float = Field(ge=0)
    speaker: str = Field(description="Speaker id (S1, S2, ...) from transcript.speakers.")
    text: str
    words: list[Word] = Field(default_factory=list)


class Speaker(BaseModel):
    id: str
    name: str
    role: SpeakerRole = "unknown"
    label: str | None = Field(default=None, description="The raw label the source used.")


class TranscriptSource(BaseModel):
    kind: Literal["asr", "import"]
    file: str
    sha256: str | None = None
    format: str | None = None
    backend: str | None = None
    model: str | None = None
    language: str | None = None
    timing: Literal["measured", "estimated"] = "measured"


class TranscriptCorrection(BaseModel):
    """A reviewer's correction merged from ``transcript.md``; re-applied when the source is re-imported."""

    segment: int = Field(ge=0, description="Segment id the correction was made on.")
    start: float = Field(ge=0, description="Start of that segment (re-application checks it).")
    field: Literal["text", "speaker"]
    before: str = Field(description="Text or speaker name before the correction.")
    after: str = Field(description="Text or speaker name the reviewer wrote.")
    applied: bool = Field(default=True, description="False when a re-import no longer matched it.")


class Transcript(BaseModel):
    """``interviews/<id>/transcript.json``: the one shape every importer and ASR backend writes."""

    schema_version: Literal[1] = 1
    interview: str
    source: TranscriptSource
    speakers: list[Speaker] = Field(default_factory=list)
    segments: list[Segment] = Field(default_factory=list)
    corrections: list[TranscriptCorrection] = Field(
        default_factory=list, description="Reviewer corrections merged from transcript.md (kb transcribe)."
    )

    def speaker(self, speaker_id: str) -> Speaker | None:
        for sp in self.speakers:
            if sp.id == speaker_id:
                return sp
        return None


# --------------------------------------------------------------------------------------------
# bundle


class EmbeddingInfo(BaseModel):
    model: str
    dim: int
    normalized: bool = True


class Manifest(BaseModel):
    """Describes a bundle; stored inside the DuckDB file and as a JSON sidecar."""

    bundle_schema_version: int = 1
    kb_version: str
    created: dt.datetime
    git_commit: str | None = None
    embedding: EmbeddingInfo
    counts: dict[str, int] = Field(default_factory=dict)
    statuses: list[str] = Field(default_factory=list)
    checksum: str = Field(description="sha256 over the exported content, in a fixed order.")


#: Models whose JSON Schemas are generated into schemas/ (file stem -> model).
SCHEMA_MODELS: dict[str, type[BaseModel]] = {
    "atom-front-matter": AtomMeta,
    "interview": Interview,
    "transcript": Transcript,
    "bundle-manifest": Manifest,
}
