"""The image tooling: builds the catalogue's sandbox images (`executor-service images build`).

Kept apart from the runtime: the API and the worker never import it, and only ask the runner
which images are present.
"""
