"""BM25: bm25s (what kb uses) vs tantivy, same passages, same tokenisation. Printed, never asserted.

Both index the bundle's own stemmed tokens (``pipeline.index.lexical.tokenize``: bm25s'
tokenizer, English stopwords, Snowball stemmer), tantivy through its whitespace tokenizer, so
the terms are identical; queries are tokenised the same way and run as an OR of their terms.
Passages: the real Podman + Argo CD passages grown to each size (``bench/realdata.py``); queries:
the eval set's questions and atom titles. Reports p50/p99 per query and the overlap of the top-10.

    python bench/lexical_choice.py [--sizes 10000 100000]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import numpy as np  # noqa: E402
import realdata  # noqa: E402

from pipeline.index.lexical import Lexical, tokenize  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    args = ap.parse_args()
    import tantivy

    real = realdata.real_passages()
    qtok = tokenize(real.queries)
    for n in args.sizes:
        content = realdata.grow_content(real, n)
        docs = [list(p[8] or []) for p in content.passages]
        t = time.perf_counter()
        bm = Lexical(docs)
        b_build = time.perf_counter() - t
        sb = tantivy.SchemaBuilder()
        sb.add_text_field("t", stored=False, tokenizer_name="whitespace")
        sb.add_integer_field("id", stored=True, fast=True)
        schema = sb.build()
        with tempfile.TemporaryDirectory() as tmp:
            t = time.perf_counter()
            index = tantivy.Index(schema, path=tmp)
            w = index.writer(heap_size=100_000_000, num_threads=1)
            for i, toks in enumerate(docs):
                w.add_document(tantivy.Document(t=" ".join(toks) or "\x00", id=i))
            w.commit()
            w.wait_merging_threads()
            index.reload()
            searcher = index.searcher()
            t_build = time.perf_counter() - t

            one_segment = searcher.num_segments == 1  # then a hit's address is the passage's position

            def tv(tokens: list[str], k: int = 50, index=index, searcher=searcher, one=one_segment):
                if not tokens:
                    return []
                q = index.parse_query(" OR ".join(f'"{x}"' for x in tokens), ["t"])
                hits = searcher.search(q, k).hits
                if one:  # no stored-field read per hit (what a kb integration would do)
                    return [addr.doc for _, addr in hits]
                return [searcher.doc(addr)["id"][0] for _, addr in hits]

            def bs(tokens: list[str], k: int = 50, bm=bm, n=n):
                s = bm._bm25.get_scores(tokens) if tokens else np.zeros(n)
                idx = np.argpartition(-s, k)[:k]
                return idx[np.argsort(-s[idx])]

            times = {"bm25s (kb today)": [], "tantivy": []}
            agree, exact = [], []
            for toks in qtok:
                t = time.perf_counter()
                a = bs(toks)
                times["bm25s (kb today)"].append(time.perf_counter() - t)
                t = time.perf_counter()
                b = tv(toks)
                times["tantivy"].append(time.perf_counter() - t)
                if toks:  # grown passages tie (copies with the same terms): a hit scoring at least
                    # bm25s' 10th score is as good as any of bm25s' own top-10
                    s = bm._bm25.get_scores(toks)
                    agree.append(float(np.mean([s[i] >= s[a[9]] for i in b[:10]])) if len(b) >= 10 else 1.0)
                    exact.append(len(set(a[:10].tolist()) & set(b[:10])) / 10)
        ref = float(np.median(times["bm25s (kb today)"]))
        print(
            f"\n{n:,} passages, {len(qtok)} real queries, same tokens; build bm25s {b_build:.1f} s, tantivy {t_build:.1f} s"
        )
        for name, ts in times.items():
            p50 = float(np.median(ts))
            print(
                f"{name:20} p50 {p50 * 1000:7.3f} ms  p99 {np.percentile(ts, 99) * 1000:7.3f} ms  x bm25s {p50 / ref:5.2f}"
            )
        print(
            f"tantivy {searcher.num_segments} segment(s); top-10 agreement with bm25s (ties counted): "
            f"{np.mean(agree):.3f}; same ids: {np.mean(exact):.3f}"
        )


if __name__ == "__main__":
    main()
