"""A tiny, randomly initialised CTranslate2 Whisper model, built at test time (no download).

Random weights transcribe nonsense, but every real code path runs: mel features, Silero VAD, the
CTranslate2 encoder/decoder, timestamp rules, DTW word alignment. The tokenizer is the real
multilingual Whisper tokenizer (openai/whisper ``multilingual.tiktoken``, MIT) converted to a
HuggingFace ``tokenizer.json`` and vendored gzipped in ``tests/data/asr/`` (regenerate with
``python tests/fakes/tiny_whisper.py PATH/TO/multilingual.tiktoken``).

Decode with ``beam_size=1, temperature=0.0, max_new_tokens=16, condition_on_previous_text=False``
or random weights sample up to 448 tokens per 30 s window.
"""

from __future__ import annotations

import gzip
import shutil
import sys
from pathlib import Path

import numpy as np

DATA = Path(__file__).resolve().parent.parent / "data" / "asr"
TOKENIZER_GZ = DATA / "whisper-multilingual-tokenizer.json.gz"

#: Bounded, deterministic decoding for random weights, as settings (``Settings.load(None, **TINY)``).
TINY = {
    "asr.beam_size": 1,
    "asr.temperature": 0.0,
    "asr.max_new_tokens": 16,
    "asr.condition_on_previous_text": False,
    "asr.compute_type": "float32",
}

D_MODEL = 64
FFN = 128
VOCAB = 51865
N_MELS = 80
LANGUAGES = 99
# Whisper's special tokens after the 50257 BPE ranks (openai/whisper tokenizer.py order).
LANG_CODES = (
    "en zh de es ru ko fr ja pt tr pl ca nl ar sv it id hi fi vi he uk el ms cs ro da hu ta no th ur "
    "hr bg lt la mi ml cy sk te fa lv bn sr az sl kn et mk br eu is hy ne mn bs kk sq sw gl mr pa si "
    "km sn yo so af oc ka be tg sd gu am yi lo uz fo ht ps tk nn mt sa lb my bo tl mg as tt haw ln ha "
    "ba jw su yue"
).split()


def special_tokens() -> list[str]:
    return [
        "<|endoftext|>",
        "<|startoftranscript|>",
        *[f"<|{code}|>" for code in LANG_CODES[:LANGUAGES]],
        "<|translate|>",
        "<|transcribe|>",
        "<|startoflm|>",
        "<|startofprev|>",
        "<|nospeech|>",
        "<|notimestamps|>",
        *[f"<|{i * 0.02:.2f}|>" for i in range(1501)],
    ]


def convert_tiktoken(tiktoken_file: Path, out: Path) -> None:
    """Convert Whisper's tiktoken BPE ranks to a tokenizer.json (HF converter + Whisper specials)."""
    from tokenizers import AddedToken
    from transformers.convert_slow_tokenizer import TikTokenConverter

    tok = TikTokenConverter(
        vocab_file=str(tiktoken_file),
        pattern=r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+""",
    ).converted()
    tok.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in special_tokens()])
    assert tok.get_vocab_size() == VOCAB, tok.get_vocab_size()
    with gzip.open(out, "wt", encoding="utf-8") as fh:
        fh.write(tok.to_str())


def _fill(obj, name: str, shape: tuple[int, ...], rng: np.random.Generator) -> None:
    if name == "gamma":
        value = np.ones(shape, dtype=np.float32)
    elif name in ("beta", "bias"):
        value = np.zeros(shape, dtype=np.float32)
    else:
        value = (rng.standard_normal(shape) * 0.05).astype(np.float32)
    setattr(obj, name, value)


def _layer_norm(ln, rng) -> None:
    _fill(ln, "gamma", (D_MODEL,), rng)
    _fill(ln, "beta", (D_MODEL,), rng)


def _linear(lin, out_dim: int, in_dim: int, rng) -> None:
    _fill(lin, "weight", (out_dim, in_dim), rng)
    _fill(lin, "bias", (out_dim,), rng)


def _set_layer(layer, rng, cross: bool) -> None:
    sa = layer.self_attention
    _layer_norm(sa.layer_norm, rng)
    _linear(sa.linear[0], 3 * D_MODEL, D_MODEL, rng)  # fused q, k, v
    _linear(sa.linear[1], D_MODEL, D_MODEL, rng)
    if cross:
        ca = layer.attention
        _layer_norm(ca.layer_norm, rng)
        _linear(ca.linear[0], D_MODEL, D_MODEL, rng)  # q
        _linear(ca.linear[1], 2 * D_MODEL, D_MODEL, rng)  # fused k, v
        _linear(ca.linear[2], D_MODEL, D_MODEL, rng)
    _layer_norm(layer.ffn.layer_norm, rng)
    _linear(layer.ffn.linear_0, FFN, D_MODEL, rng)
    _linear(layer.ffn.linear_1, D_MODEL, FFN, rng)


def build_tiny_whisper(out_dir: Path, seed: int = 0) -> Path:
    """Write a 2-layer, d_model=64 Whisper (model.bin, config.json, vocabulary.json, tokenizer.json)."""
    from ctranslate2.specs import whisper_spec

    out_dir = Path(out_dir)
    if (out_dir / "model.bin").is_file() and (out_dir / "tokenizer.json").is_file():
        return out_dir
    rng = np.random.default_rng(seed)
    spec = whisper_spec.WhisperSpec(2, 2, 2, 2)
    enc, dec = spec.encoder, spec.decoder
    _fill(enc.conv1, "weight", (D_MODEL, N_MELS, 3), rng)
    _fill(enc.conv1, "bias", (D_MODEL,), rng)
    _fill(enc.conv2, "weight", (D_MODEL, D_MODEL, 3), rng)
    _fill(enc.conv2, "bias", (D_MODEL,), rng)
    _fill(enc.position_encodings, "encodings", (1500, D_MODEL), rng)
    _layer_norm(enc.layer_norm, rng)
    for i in range(2):
        _set_layer(enc.layer[i], rng, cross=False)
    _fill(dec.embeddings, "weight", (VOCAB, D_MODEL), rng)
    _fill(dec.position_encodings, "encodings", (448, D_MODEL), rng)
    _layer_norm(dec.layer_norm, rng)
    _fill(dec.projection, "weight", (VOCAB, D_MODEL), rng)
    for i in range(2):
        _set_layer(dec.layer[i], rng, cross=True)

    tokens = special_tokens()
    with gzip.open(TOKENIZER_GZ, "rt", encoding="utf-8") as fh:
        tokenizer_json = fh.read()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(tokenizer_json)
    vocab = tok.get_vocab(with_added_tokens=True)
    by_id = {i: t for t, i in vocab.items()}
    spec.register_vocabulary([by_id[i] for i in range(VOCAB)])
    assert by_id[50257] == tokens[0] and by_id[50363] == "<|notimestamps|>"
    spec.config.suppress_ids = []
    spec.config.suppress_ids_begin = [220, 50257]
    spec.config.lang_ids = list(range(50259, 50259 + LANGUAGES))
    spec.config.alignment_heads = [(1, 0), (1, 1)]
    spec.validate()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    spec.save(str(tmp))
    (tmp / "tokenizer.json").write_text(tokenizer_json, encoding="utf-8")
    tmp.rename(out_dir)
    return out_dir


def espeak_wav(path: Path, text: str, voice: str = "en", lead_silence_s: float = 0.0) -> Path:
    """Speech made by espeak-ng in milliseconds, as a 16 kHz mono WAV (optionally after silence)."""
    import subprocess

    raw = Path(str(path) + ".espeak.wav")
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(raw), text], check=True, capture_output=True)
    filters = f"adelay={int(lead_silence_s * 1000)}" if lead_silence_s else "anull"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(raw), "-af", filters, "-ar", "16000", "-ac", "1", str(path)],
        check=True,
    )
    raw.unlink()
    return Path(path)


def build_tiny_wav2vec2(out_dir: Path) -> Path:
    """A random 2-layer wav2vec2 CTC model + processor (letters and '|'), for whisperX alignment."""
    import json

    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    out_dir.mkdir(parents=True, exist_ok=True)
    vocab = {"<pad>": 0, "<s>": 1, "</s>": 2, "<unk>": 3, "|": 4}
    for char in "abcdefghijklmnopqrstuvwxyz'":
        vocab[char] = len(vocab)
    (out_dir / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    tokenizer = Wav2Vec2CTCTokenizer(str(out_dir / "vocab.json"), word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16000, padding_value=0.0, do_normalize=True)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(out_dir)
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(vocab),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(out_dir)
    return out_dir


def punkt_params(nltk_dir: Path, language: str = "english") -> Path:
    """Empty punkt_tab parameters (no abbreviations learned): NLTK's sentence splitter loads them
    without the download whisperX would otherwise attempt."""
    folder = nltk_dir / "tokenizers" / "punkt_tab" / language
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("collocations.tab", "sent_starters.txt", "abbrev_types.txt", "ortho_context.tab"):
        (folder / name).touch()
    return nltk_dir


if __name__ == "__main__":  # pragma: no cover - regeneration helper
    convert_tiktoken(Path(sys.argv[1]), TOKENIZER_GZ)
    print(f"wrote {TOKENIZER_GZ} ({TOKENIZER_GZ.stat().st_size} bytes)")
