"""A local pyannote.audio 4 speaker-diarisation pipeline built from files on disk (no hub).

Segmentation: the PyanNet checkpoint whisperX ships (``whisperx/assets/pytorch_model.bin``, MIT).
Embedding: an untrained WeSpeakerResNet34 saved as a pyannote checkpoint at test time, so the
clusters are meaningless but every step (segmentation, embedding, clustering, reconstruction)
runs for real. ``plda: null`` with AgglomerativeClustering: the VBx PLDA is not needed.
"""

from __future__ import annotations

from pathlib import Path

import yaml


def build_local_pipeline(out_dir: Path) -> Path:
    """Write ``out_dir/config.yaml`` (+ embedding.bin); return the directory."""
    import lightning
    import torch
    import whisperx
    from pyannote.audio.core.task import Problem, Resolution, Specifications
    from pyannote.audio.models.embedding import WeSpeakerResNet34

    out_dir.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    model = WeSpeakerResNet34()
    model.specifications = Specifications(problem=Problem.REPRESENTATION, resolution=Resolution.CHUNK, duration=10.0)
    checkpoint = {
        "state_dict": model.state_dict(),
        "hyper_parameters": dict(model.hparams),
        "hparams_name": "kwargs",
        "pytorch-lightning_version": lightning.__version__,
    }
    model.on_save_checkpoint(checkpoint)  # adds pyannote.audio's versions / architecture keys
    torch.save(checkpoint, out_dir / "embedding.bin")
    segmentation = Path(whisperx.__file__).parent / "assets" / "pytorch_model.bin"
    config = {
        "pipeline": {
            "name": "pyannote.audio.pipelines.SpeakerDiarization",
            "params": {
                "segmentation": str(segmentation),
                "embedding": "embedding.bin",  # relative to the config: kb resolves it
                "plda": None,
                "clustering": "AgglomerativeClustering",
                "embedding_exclude_overlap": True,
            },
        },
        "params": {
            "segmentation": {"min_duration_off": 0.0, "threshold": 0.5},
            "clustering": {"method": "centroid", "min_cluster_size": 12, "threshold": 0.7},
        },
    }
    (out_dir / "config.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    return out_dir
