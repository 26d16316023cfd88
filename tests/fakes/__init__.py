"""Fakes at boundaries the test machine cannot reach (an LLM endpoint), behaving like the real thing."""
