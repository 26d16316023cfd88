"""Rerankers: a model that reads a question and a passage together and says how well the passage answers it.

Optional (``serve.reranker``): a bi-encoder's cosine and the term signals cannot tell a free paraphrase
from an in-domain question the knowledge base never covers; a cross-encoder reads both texts at once.
``load_reranker(settings)`` gives the configured one (or None); backends register under the ``rerank``
kind of ``pipeline.backends.registry``.
"""

from pipeline.backends.rerank.base import Reranker
from pipeline.backends.rerank.loader import load_reranker

__all__ = ["Reranker", "load_reranker"]
