"""kb: expert interviews -> grounded knowledge atoms -> a reviewed knowledge base and a cited chat endpoint."""

__version__ = "0.1.0"
