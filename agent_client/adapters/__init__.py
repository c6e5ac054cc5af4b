"""Adapters that let other agent frameworks run their code in the sandbox service."""
