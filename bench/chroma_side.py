"""The chromadb side of bench/speed_bench.py; runs in its own venv (never in kb's), telemetry off.

chromadb in-process (EphemeralClient), cosine HNSW with its defaults, the passages added with
their precomputed all-MiniLM-L6-v2 vectors (the same vectors kb serves), and queried by text
through chromadb's own ONNX embedding function pointed at the local model (``--model-dir``: a
folder written by ``kb embed onnx``, copied where chromadb looks for its model). One query at a
time, one thread. Prints one JSON object: build seconds, per-query seconds, top-10 ids.

    <chroma venv>/bin/python bench/chroma_side.py --data DIR --model-dir DIR
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path

os.environ["ANONYMIZED_TELEMETRY"] = "False"
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


def local_model(model_dir: Path):
    """chromadb's ONNXMiniLM_L6_V2, reading the local model instead of downloading it."""
    from chromadb.utils.embedding_functions import ONNXMiniLM_L6_V2

    class Local(ONNXMiniLM_L6_V2):
        DOWNLOAD_PATH = Path(os.environ["KB_CHROMA_HOME"]) / "onnx_models" / "all-MiniLM-L6-v2"

        def _download_model_if_not_exists(self) -> None:  # nothing downloads: the files are in place
            return None

    target = Local.DOWNLOAD_PATH / Local.EXTRACTED_FOLDER_NAME
    target.mkdir(parents=True, exist_ok=True)
    for name in (
        "model.onnx",
        "tokenizer.json",
        "config.json",
        "vocab.txt",
        "tokenizer_config.json",
        "special_tokens_map.json",
    ):
        if (model_dir / name).is_file():
            shutil.copyfile(model_dir / name, target / name)
    ef = Local(preferred_providers=["CPUExecutionProvider"])
    return ef


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, required=True, help="vectors.npy, ids.json, docs.json, queries.json")
    ap.add_argument("--model-dir", type=Path, required=True)
    args = ap.parse_args()
    import chromadb
    import numpy as np
    from chromadb.config import Settings

    vectors = np.load(args.data / "vectors.npy")
    docs = json.loads((args.data / "docs.json").read_text())
    queries = json.loads((args.data / "queries.json").read_text())
    ef = local_model(args.model_dir)
    client = chromadb.EphemeralClient(Settings(anonymized_telemetry=False))
    col = client.create_collection("bench", embedding_function=ef, configuration={"hnsw": {"space": "cosine"}})
    t0 = time.perf_counter()
    step = 5000
    for start in range(0, len(vectors), step):
        stop = min(len(vectors), start + step)
        col.add(
            ids=[str(i) for i in range(start, stop)],
            embeddings=vectors[start:stop],
            documents=docs[start:stop],
        )
    build = time.perf_counter() - t0
    for q in queries[:10]:  # warm up
        col.query(query_texts=[q], n_results=10)
    times, ids, qvecs = [], [], []
    for q in queries:
        t = time.perf_counter()
        r = col.query(query_texts=[q], n_results=10, include=["documents", "distances"])
        times.append(time.perf_counter() - t)
        ids.append([int(i) for i in r["ids"][0]])
    encode = []
    for q in queries[:50]:
        t = time.perf_counter()
        qvecs.append(ef([q])[0])
        encode.append(time.perf_counter() - t)
    json.dump(
        {"build_s": build, "times": times, "ids": ids, "encode_times": encode, "version": chromadb.__version__},
        sys.stdout,
    )


if __name__ == "__main__":
    main()
