"""Benchmark: what kb's speech path costs on top of faster-whisper itself (issue 3; target <= 1.05).

Same tiny random CTranslate2 Whisper (tests/fakes/tiny_whisper.py), same espeak-ng recording,
same decoding options, one CPU thread. Times, as the median of several interleaved runs:

- reference: ``WhisperModel.transcribe(path, ...)`` called directly, segments consumed;
- ``SpeechPipeline.transcribe`` (decode once, ASR, diarisation "none", word->speaker assignment,
  Transcript model, source sha256) with the model loaded once, as ``kb transcribe`` batches do;
- the whole ``kb transcribe --force`` stage for one interview (probe, ASR, speaker mapping,
  transcript.json + transcript.md written), which loads the model per run, against the
  reference *including* ``WhisperModel(...)`` loading.

A tiny model makes ASR itself very fast, so fixed per-file costs weigh far more here than with
a real model: these ratios are upper bounds. Prints ratios; asserts nothing.
Usage: ``python bench/asr_overhead.py [--runs 7] [--seconds 60]``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.backends import audio as audio_io  # noqa: E402
from pipeline.config import Settings  # noqa: E402
from pipeline.models import Interview  # noqa: E402
from pipeline.reporting import Reporter  # noqa: E402
from pipeline.stages.transcribe.speech import SpeechPipeline  # noqa: E402
from tests.fakes.tiny_whisper import build_tiny_whisper, espeak_wav  # noqa: E402

TEXT = (
    "When you see deadline exceeded during a sync, it is almost always the repo server. "
    "First look at its memory, then at the number of manifests it renders for the application. "
    "If the repo server restarts, raise its memory limit and enable the manifest cache. "
)
DECODE = {"beam_size": 1, "temperature": 0.0, "max_new_tokens": 16, "condition_on_previous_text": False}


def median_time(fn, runs: int) -> float:
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=60.0, help="approximate length of the recording")
    args = parser.parse_args()

    from faster_whisper import WhisperModel

    tmp = Path(tempfile.mkdtemp(prefix="kb-asr-bench-"))
    model_dir = build_tiny_whisper(tmp / "tiny-whisper")
    repeats = max(1, round(args.seconds / 14))  # espeak reads TEXT in about 14 s
    wav = espeak_wav(tmp / "interview.wav", TEXT * repeats)
    overrides = {
        "asr.model": str(model_dir),
        "asr.compute_type": "float32",
        "asr.beam_size": 1,
        "asr.temperature": 0.0,
        "asr.max_new_tokens": 16,
        "asr.condition_on_previous_text": False,
        "diarise.backend": "none",
        "threads": 1,
    }
    settings = Settings.load(None, **overrides)
    interview = Interview(id="bench", title="Bench", date="2026-01-01")

    def load_model():
        return WhisperModel(str(model_dir), device="cpu", compute_type="float32", cpu_threads=1)

    model = load_model()

    def direct(m=None):
        segments, _ = (m or model).transcribe(str(wav), language="en", word_timestamps=True, vad_filter=True, **DECODE)
        return list(segments)

    samples = audio_io.load(wav).samples  # bit-identical to faster_whisper.decode_audio(wav)

    def direct_predecoded():
        segments, _ = model.transcribe(samples, language="en", word_timestamps=True, vad_filter=True, **DECODE)
        return list(segments)

    pipeline = SpeechPipeline(settings, Reporter())

    def project():
        return pipeline.transcribe(wav, interview)

    # warm-up (page cache, allocator, VAD session), and check both paths decode the same thing
    ours_texts = [s.text for s in project().segments]
    same = [s.text.strip() for s in direct() if s.text.strip()][: len(ours_texts)] == ours_texts
    ref, pre, ours = [], [], []
    for _ in range(args.runs):  # interleaved, so drift and a neighbour's load hit all of them
        ref.append(median_time(direct, 1))
        pre.append(median_time(direct_predecoded, 1))
        ours.append(median_time(project, 1))
    ref_s, pre_s, ours_s = statistics.median(ref), statistics.median(pre), statistics.median(ours)
    if os.environ.get("KB_BENCH_VERBOSE"):
        print("direct:", [round(t * 1000) for t in ref], "pre-decoded:", [round(t * 1000) for t in pre])
        print("ours:", [round(t * 1000) for t in ours])

    # The whole stage, model load included, in a real workspace made by the CLI.
    from pipeline.cli import main as kb
    from pipeline.stages import transcribe as transcribe_stage
    from pipeline.workspace import Workspace

    ws_root = tmp / "ws"
    kb(["init", str(ws_root)])
    kb(["-w", str(ws_root), "-q", "add", str(wav), "--id", "bench", "--title", "Bench", "--expert", "Alice Moreau"])
    workspace = Workspace.at(ws_root)
    stage_settings = Settings.load(ws_root, **overrides)

    def stage():
        transcribe_stage.run(stage_settings, workspace, Reporter(), ["bench"], force=True)

    def direct_with_load():
        direct(load_model())

    stage(), direct_with_load()
    ref_load, stage_t = [], []
    for _ in range(args.runs):
        ref_load.append(median_time(direct_with_load, 1))
        stage_t.append(median_time(stage, 1))
    ref_load_s, stage_s = statistics.median(ref_load), statistics.median(stage_t)

    pipeline.close()
    seconds = audio_io.load(wav).duration
    shutil.rmtree(tmp, ignore_errors=True)
    print(f"recording: {seconds:.0f} s of espeak-ng speech")
    print(f"same segments from both paths: {'yes' if same else 'NO'}")
    print(f"runs: {args.runs} (median), 1 thread, tiny random Whisper (d_model 64), beam 1, VAD + word timestamps")
    print(f"faster-whisper direct, model loaded:    {ref_s * 1000:8.1f} ms")
    print(
        f"SpeechPipeline.transcribe:              {ours_s * 1000:8.1f} ms   ratio {ours_s / ref_s:.3f} (target <= 1.05)"
    )
    print(
        f"faster-whisper on pre-decoded samples:  {pre_s * 1000:8.1f} ms   SpeechPipeline / this: {ours_s / pre_s:.3f} "
        "(strictest: the reference skips decoding the file)"
    )
    print(f"faster-whisper direct incl. model load: {ref_load_s * 1000:8.1f} ms")
    print(
        f"kb transcribe stage (one interview):    {stage_s * 1000:8.1f} ms   ratio {stage_s / ref_load_s:.3f} "
        "(incl. probe, speaker mapping, transcript.json/.md writes)"
    )


if __name__ == "__main__":
    main()
