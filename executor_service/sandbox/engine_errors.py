"""The one translation of the engine's failures (docker-py's and our engine client's) into the
service's error tree: every call the runtime makes to the engine goes through it."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import docker.errors
import requests.exceptions

from executor_service.errors import ImageMissing, NotFound, SandboxError
from executor_service.sandbox.engine import EngineError, EngineNotFound


@contextlib.contextmanager
def engine_errors() -> Iterator[None]:
    """Translate the engine's failures into the service's error tree, at this one boundary."""
    try:
        yield
    except docker.errors.ImageNotFound as exc:
        raise ImageMissing(f"sandbox image is not built: {exc.explanation}") from exc
    except docker.errors.NotFound as exc:
        raise NotFound(f"sandbox is gone: {exc.explanation}") from exc
    except docker.errors.DockerException as exc:
        raise SandboxError(f"container engine failed: {exc}") from exc
    except requests.exceptions.RequestException as exc:
        raise SandboxError(f"container engine unreachable: {exc}") from exc
    except EngineNotFound as exc:
        if "no such image" in exc.explanation.lower():
            raise ImageMissing(f"sandbox image is not built: {exc.explanation}") from exc
        raise NotFound(f"sandbox is gone: {exc.explanation}") from exc
    except EngineError as exc:
        raise SandboxError(f"container engine failed: {exc}") from exc
    except OSError as exc:  # the engine's socket: refused, reset, timed out
        raise SandboxError(f"container engine unreachable: {exc}") from exc
