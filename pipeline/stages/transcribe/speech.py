"""Recording -> speaker-labelled, timed transcript: decode once, ASR, diarise, assign words.

``SpeechPipeline`` is what ``kb transcribe`` holds for a batch of interviews: each model (ASR,
pyannote) loads on first use and is reused for every later interview; ``close()`` frees them.
Speakers come out with their raw labels (SPEAKER_00, CH0 ...) and role "unknown"; the
transcripts layer maps them to the people of interview.yaml.
"""

from __future__ import annotations

import time
from pathlib import Path

from pipeline.backends import audio as audio_io
from pipeline.backends import registry
from pipeline.backends.asr.base import AsrBackend, AsrResult
from pipeline.backends.diarise.base import Diariser
from pipeline.config import Settings, secret
from pipeline.models import Interview, Segment, Speaker, Transcript, TranscriptSource, Word
from pipeline.reporting import Reporter
from pipeline.stages.transcribe.assign import SpeakerSegment, assign_speakers
from pipeline.workspace import sha256_file


def make_asr(settings: Settings) -> AsrBackend:
    backend: AsrBackend = registry.create("asr", settings.asr.backend, settings)
    return backend


def diariser_kind(settings: Settings, audio: audio_io.Audio) -> str:
    """Which diariser runs on ``audio``: ``auto`` picks channels when each channel holds its own person,
    pyannote when a pipeline (or hub token) is configured, else none (one speaker)."""
    kind = settings.diarise.backend
    if kind != "auto":
        return kind
    if audio_io.has_separate_channels(audio):
        return "channels"
    if settings.diarise.pipeline or secret(settings.diarise.token_env):
        return "pyannote"
    return "none"


def vocabulary_hints(settings: Settings, interview: Interview) -> tuple[str | None, str | None]:
    """(initial_prompt, hotwords) from the interview's vocabulary, as ``asr.vocabulary_hint`` says."""
    terms = [t.strip() for t in interview.vocabulary if t.strip()]
    mode = settings.asr.vocabulary_hint
    if not terms or mode == "off":
        return None, None
    listed = ", ".join(terms)
    prompt = f"Glossary: {listed}." if mode in ("initial_prompt", "both") else None
    hotwords = listed if mode in ("hotwords", "both") else None
    return prompt, hotwords


class SpeechPipeline:
    def __init__(self, settings: Settings, reporter: Reporter | None = None):
        self.settings = settings
        self.reporter = reporter or Reporter()
        self._asr: AsrBackend | None = None
        self._diarisers: dict[str, Diariser] = {}

    @property
    def asr(self) -> AsrBackend:
        if self._asr is None:
            started = time.perf_counter()
            self._asr = make_asr(self.settings)
            self.reporter.info(
                f"loaded ASR model {self._asr.model_id} ({self._asr.name}) in {time.perf_counter() - started:.1f} s"
            )
        return self._asr

    def diariser(self, kind: str) -> Diariser:
        if kind not in self._diarisers:
            started = time.perf_counter()
            self._diarisers[kind] = registry.create("diarise", kind, self.settings)
            if kind == "pyannote":
                self.reporter.info(f"loaded pyannote pipeline in {time.perf_counter() - started:.1f} s")
        return self._diarisers[kind]

    def transcribe(self, audio_path: Path | str, interview: Interview) -> Transcript:
        """Transcribe and diarise one recording of ``interview`` (``recognise`` then ``diarise``)."""
        audio = audio_io.load(Path(audio_path))
        return self.diarise(audio_path, interview, self.recognise(interview, audio), audio)

    def recognise(self, interview: Interview, audio: audio_io.Audio) -> AsrResult:
        """ASR of one decoded recording: timed segments and words, no speakers yet."""
        language: str | None = self.settings.asr.language or interview.language
        if language in ("", "auto"):
            language = None
        prompt, hotwords = vocabulary_hints(self.settings, interview)

        asr = self.asr
        asr.progress = lambda segments: self.reporter.progress(
            segments, f"{interview.id}: transcribing {audio.duration / 60:.1f} min"
        )
        started = time.perf_counter()
        result = asr.transcribe(audio.samples, language, prompt, hotwords)
        took = time.perf_counter() - started
        for note in result.notes:
            self.reporter.warn(note)
        self.reporter.info(
            f"{interview.id}: transcribed {audio.duration:.0f} s in {took:.1f} s "
            f"({len(result.segments)} segment(s), language {result.language})"
        )
        return result

    def diarise(
        self, audio_path: Path | str, interview: Interview, result: AsrResult, audio: audio_io.Audio | None = None
    ) -> Transcript:
        """Diarise the recording and give each word of ``result`` (its ASR) a speaker."""
        audio_path = Path(audio_path)
        audio = audio if audio is not None else audio_io.load(audio_path)
        kind = diariser_kind(self.settings, audio)
        if kind == "none" and self.settings.diarise.backend == "auto":
            self.reporter.warn(
                f"{interview.id}: no diarisation configured for a single-channel recording: one speaker. "
                "Set diarise.pipeline to a local pyannote pipeline to tell speakers apart."
            )
        started = time.perf_counter()
        turns = self.diariser(kind).diarise(
            audio, interview.num_speakers, interview.min_speakers, interview.max_speakers
        )
        if kind != "none":
            speakers = len({t.speaker for t in turns})
            self.reporter.info(
                f"{interview.id}: diarised ({kind}) in {time.perf_counter() - started:.1f} s: "
                f"{speakers} speaker(s), {len(turns)} turns"
            )

        labelled = assign_speakers(result.segments, turns, self.settings.diarise.smoothing_s)
        ids, segments = _speaker_segments(labelled)
        return Transcript(
            interview=interview.id,
            source=TranscriptSource(
                kind="asr",
                file=audio_path.name,
                sha256=sha256_file(audio_path),
                format=audio_path.suffix.lstrip(".").lower() or None,
                backend=result.backend,
                model=result.model,
                language=result.language,
                timing="measured",
            ),
            speakers=[Speaker(id=sid, name=label, role="unknown", label=label) for label, sid in ids.items()],
            segments=segments,
        )

    def close(self) -> None:
        """Free every loaded model."""
        if self._asr is not None:
            self._asr.close()
            self._asr = None
        for diariser in self._diarisers.values():
            diariser.close()
        self._diarisers.clear()

    def __enter__(self) -> SpeechPipeline:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _speaker_segments(labelled: list[SpeakerSegment]) -> tuple[dict[str, str], list[Segment]]:
    """Raw speaker label -> S1, S2 ... (in order of appearance), and the transcript's segments."""
    ids: dict[str, str] = {}
    segments: list[Segment] = []
    for seg in labelled:
        sid = ids.setdefault(seg.speaker, f"S{len(ids) + 1}")
        words = [
            Word(
                start=lw.word.start,
                end=lw.word.end,
                text=lw.word.text.strip(),
                score=lw.word.score,
                speaker=ids.setdefault(lw.speaker, f"S{len(ids) + 1}"),
            )
            for lw in seg.words
        ]
        segments.append(
            Segment(
                id=len(segments),
                start=seg.start,
                end=max(seg.end, seg.start),
                speaker=sid,
                text=seg.text,
                words=words,
            )
        )
    return ids, segments
