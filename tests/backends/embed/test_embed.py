"""Embedders: the shipped default model offline, the onnx twin (same vectors), missing models."""

from __future__ import annotations

import numpy as np
import pytest
from bundle_support import embedder

from pipeline.backends.embed import load_embedder, resolve_model
from pipeline.config import Settings
from pipeline.errors import MissingModelError

TEXTS = [
    "Sync fails with 'context deadline exceeded'",
    "How do I rotate the Postgres password without downtime?",
    "Podman: permission denied when mounting a volume with SELinux enabled (:z / :Z suffixes).",
    "ünïcödé and emoji 🚀 still embed",
    "",
    " ".join(["A long passage that goes past the model's 256 word-piece window."] * 40),
]


def test_default_model_is_offline_normalised_and_counts_work():
    e = embedder()
    assert e.model_id == "all-MiniLM-L6-v2" and e.dim == 384 and e.max_tokens == 256
    before = (e.calls, e.texts_encoded)
    v = e.encode(TEXTS)
    assert v.dtype == np.float32 and v.shape == (len(TEXTS), 384)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert (e.calls, e.texts_encoded) == (before[0] + 1, before[1] + len(TEXTS))
    assert e.encode([]).shape == (0, 384) and e.calls == before[0] + 1  # nothing to do, no call
    sims = v @ v.T
    assert sims[0, 1] < 0.5 and sims[0, 0] == pytest.approx(1.0, abs=1e-5)
    assert e.count_tokens("hello world") == 4  # [CLS] hello world [SEP]
    assert e.count_tokens(TEXTS[-1]) > 256


@pytest.fixture(scope="module")
def onnx_home(tmp_path_factory):
    return tmp_path_factory.mktemp("onnx-home")


def test_onnx_matches_sentence_transformers(onnx_home, monkeypatch):
    """The onnxruntime embedder (BERT body exported once to ONNX) gives the same vectors: cosine >= 0.9999."""
    tmp_path = onnx_home
    monkeypatch.setenv("KB_CACHE_DIR", str(tmp_path / "cache"))
    onnx = load_embedder(Settings.load(None, **{"embed.backend": "onnx"}))
    exported = list((tmp_path / "cache" / "onnx").glob("all-MiniLM-L6-v2-*/model.onnx"))
    assert exported and onnx.onnx_path == exported[0]
    assert onnx.model_id == embedder().model_id and onnx.dim == 384 and onnx.max_tokens == 256
    a = embedder().encode(TEXTS)
    b = onnx.encode(TEXTS)
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    # a second load reuses the cached export (no torch needed at serving time)
    mtime = exported[0].stat().st_mtime_ns
    again = load_embedder(Settings.load(None, **{"embed.backend": "onnx"}))
    assert again.onnx_path.stat().st_mtime_ns == mtime
    assert onnx.count_tokens(TEXTS[-1]) == embedder().count_tokens(TEXTS[-1])
    # serving with the cached export imports no torch at all
    import os
    import subprocess
    import sys

    code = (
        "import sys\nfrom pipeline.config import Settings\nfrom pipeline.backends.embed import load_embedder\n"
        "e = load_embedder(Settings.load(None, **{'embed.backend': 'onnx'}))\ne.encode(['x'])\n"
        "print(sorted(m for m in ('torch', 'transformers', 'sentence_transformers') if m in sys.modules))"
    )
    env = dict(os.environ, KB_CACHE_DIR=str(tmp_path / "cache"))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    assert out.stdout.strip() == "[]", out.stderr


def test_model_by_local_path(tmp_path):
    import os
    import shutil

    src = resolve_model("sentence-transformers/all-MiniLM-L6-v2").location
    local = tmp_path / "my-minilm"
    shutil.copytree(src, local, copy_function=os.symlink)
    e = load_embedder(Settings.load(None, **{"embed.model": str(local)}))
    assert e.model_id == "my-minilm" and e.dim == 384
    assert float(e.encode(["x y z"])[0] @ embedder().encode(["x y z"])[0]) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize("name", ["/no/such/model-dir", "someone/not-in-the-local-cache"])
def test_missing_model_names_the_setting(name):
    with pytest.raises(MissingModelError) as info:
        load_embedder(Settings.load(None, **{"embed.model": name}))
    assert name in info.value.message and "(embed.model)" in info.value.message
    assert "embed.model" in info.value.hint and "all-MiniLM-L6-v2" in info.value.hint


def test_missing_model_through_the_cli(kb, tmp_path, monkeypatch):
    from bundle_support import make_workspace

    ws = make_workspace(tmp_path / "ws")
    monkeypatch.chdir(ws.root)
    monkeypatch.setenv("KB_EMBED_MODEL", "/no/such/model-dir")
    r = kb("export")
    assert r.exit_code == 1
    assert "Error: Embedding model directory '/no/such/model-dir' (embed.model) does not exist." in r.stderr
    assert "Hint:" in r.stderr and not ws.dist_dir.exists()


def test_a_bundle_exported_with_torch_loads_with_onnx(onnx_home, tmp_path, monkeypatch):
    """The manifest names the model, not the backend: a sentence-transformers bundle serves with onnx."""
    from bundle_support import export, make_workspace

    from pipeline.index.bundle import Bundle

    monkeypatch.setenv("KB_CACHE_DIR", str(onnx_home / "cache"))
    ws = make_workspace(tmp_path / "ws")
    path = export(ws).path
    from functools import partial

    from pipeline.backends.embed import embedder_for_manifest

    b = Bundle.load(path, partial(embedder_for_manifest, settings=Settings.load(ws.root, **{"embed.backend": "onnx"})))
    assert b.embedder.backend == "onnx"
    q = "the repo server is too slow to render manifests"
    assert [h.atom_id for h in b.search(q, k=3)] == [
        h.atom_id for h in Bundle.load(path, embedder=embedder()).search(q, k=3)
    ]
