"""Plug-in points (ASR, diarisation, LLM, embeddings). Heavy imports happen only here, lazily."""
