"""pyannote.audio speaker diarisation, from a local pipeline (directory or config.yaml), or from
the hub with a token when the user has network (``diarise.hub_pipeline``, token in the env var
named by ``diarise.token_env``).

A local config may say ``plda: null`` with a clustering that needs no PLDA (e.g.
``AgglomerativeClustering``); pyannote 4 always loads one, so kb hands it an unused placeholder
rather than letting pyannote fetch one from the hub.
"""

from __future__ import annotations

import os
from pathlib import Path

from pipeline.backends.audio import Audio
from pipeline.backends.diarise.base import Diariser, Turn
from pipeline.config import Settings, secret
from pipeline.errors import BackendError, ConfigError, MissingDependencyError, MissingModelError

FIX_PIPELINE = (
    "Set 'diarise.pipeline' to a local pyannote pipeline directory (e.g. a download of "
    "pyannote/speaker-diarization-community-1 holding config.yaml) or its config.yaml; "
    "or use diarise.backend 'channels' (multi-channel recordings) or 'none'."
)


def import_pyannote():
    os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")  # no telemetry calls
    try:
        import torch
        from pyannote.audio import Pipeline
    except ImportError:
        raise MissingDependencyError("pyannote.audio", "diarise", "Speaker diarisation with pyannote") from None
    return torch, Pipeline


class PyannoteDiariser(Diariser):
    name = "pyannote"

    def __init__(self, settings: Settings):
        torch, Pipeline = import_pyannote()
        torch.set_num_threads(settings.threads)
        self.settings = settings
        self.source = settings.diarise.pipeline
        if self.source:
            self.pipeline = self._load_local(Pipeline, Path(self.source).expanduser())
        else:
            token = secret(settings.diarise.token_env)
            if not token:
                raise MissingModelError(
                    "pyannote diarisation needs a pipeline, and none is configured.",
                    FIX_PIPELINE + f" With network access, a hub token in ${settings.diarise.token_env} also works.",
                )
            self.source = settings.diarise.hub_pipeline
            try:
                self.pipeline = Pipeline.from_pretrained(self.source, token=token)
            except Exception as exc:  # network, auth, gated model: huggingface_hub raises many kinds
                raise MissingModelError(
                    f"The pyannote pipeline '{self.source}' could not be fetched from the hub ({type(exc).__name__}).",
                    FIX_PIPELINE,
                ) from None
            if self.pipeline is None:
                raise MissingModelError(f"The hub has no pipeline '{self.source}'.", FIX_PIPELINE)
        self.pipeline.to(torch.device(settings.asr.device if settings.asr.device != "auto" else "cpu"))

    def _load_local(self, Pipeline, path: Path):
        config = path / "config.yaml" if path.is_dir() else path
        if not config.is_file():
            raise MissingModelError(f"No pyannote pipeline at '{path}' (no config.yaml).", FIX_PIPELINE)
        import yaml

        try:
            data = yaml.safe_load(config.read_text(encoding="utf-8")) or {}
            params = data["pipeline"].setdefault("params", {})
        except (yaml.YAMLError, KeyError, TypeError, AttributeError) as exc:
            raise ConfigError(
                f"{config}: not a pyannote pipeline config ({exc}).",
                "It needs 'pipeline: {name: ..., params: ...}'; see pyannote.audio's docs.",
            ) from None
        self._require_local_models(config, params)
        try:
            if "plda" in params and params["plda"] is None:
                from pyannote.audio.core.plda import PLDA

                params["plda"] = object.__new__(PLDA)  # unused by non-VBx clustering
                for key in ("segmentation", "embedding"):  # relative paths: relative to the config
                    value = params.get(key)
                    if isinstance(value, str) and not Path(value).is_absolute() and (config.parent / value).exists():
                        params[key] = str(config.parent / value)
                return Pipeline.from_pretrained(data)
            return Pipeline.from_pretrained(str(config))
        except (FileNotFoundError, OSError) as exc:
            raise MissingModelError(
                f"The pyannote pipeline at {config} refers to a missing file: {exc}", FIX_PIPELINE
            ) from None
        except Exception as exc:  # offline hub lookups for a model id in the config end here
            if "offline" in str(exc).lower() or "hub" in type(exc).__module__:
                raise MissingModelError(
                    f"The pyannote pipeline at {config} names a model that is not on disk ({type(exc).__name__}).",
                    "Make every model in the config a local path. " + FIX_PIPELINE,
                ) from None
            raise BackendError(f"pyannote could not build the pipeline at {config}: {exc}", FIX_PIPELINE) from None

    @staticmethod
    def _require_local_models(config: Path, params: dict) -> None:
        """A local pipeline must not name a hub model: pyannote would download it."""
        for key in ("segmentation", "embedding", "plda"):
            value = params.get(key)
            if isinstance(value, dict):
                value = value.get("checkpoint")
            if not isinstance(value, str) or value.startswith("$model"):
                continue  # None, or a subfolder of the pipeline's own directory
            path = Path(value).expanduser()
            if not (path.exists() or (config.parent / path).exists()):
                raise MissingModelError(
                    f"{config}: pipeline.params.{key} is '{value}', which is not a file or folder on disk "
                    "(pyannote would try to download it; kb never downloads at run time).",
                    "Download that model once and put its local path in the config. " + FIX_PIPELINE,
                )

    def diarise(self, audio: Audio, num_speakers=None, min_speakers=None, max_speakers=None) -> list[Turn]:
        import torch

        waveform = torch.from_numpy(audio.samples).unsqueeze(0)
        output = self.pipeline(
            {"waveform": waveform, "sample_rate": audio.sample_rate, "uri": audio.path.stem},
            num_speakers=num_speakers,
            min_speakers=min_speakers,
            max_speakers=max_speakers,
        )
        # pyannote 4: DiarizeOutput; its exclusive diarisation (one speaker at a time) is the one
        # made for aligning words. pyannote 3 / legacy: an Annotation.
        annotation = getattr(output, "exclusive_speaker_diarization", None) or getattr(
            output, "speaker_diarization", output
        )
        turns = [
            Turn(round(seg.start, 3), round(seg.end, 3), str(label))
            for seg, _, label in annotation.itertracks(yield_label=True)
            if seg.end > seg.start
        ]
        return sorted(turns, key=lambda t: (t.start, t.speaker))

    def close(self) -> None:
        self.pipeline = None
