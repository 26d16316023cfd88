"""The chat endpoint: a FastAPI app over a loaded bundle. Never imports stages."""
