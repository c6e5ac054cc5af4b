"""A hardened, self-hosted code-execution service for AI agents."""

__version__ = "0.1.0"
