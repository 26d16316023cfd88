"""Adapters for other frameworks' retrieval interfaces (LangChain, LlamaIndex); the core never imports them."""
