"""The one settings object of a service process, read from EXECUTOR_* variables at start-up."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class Settings(BaseSettings):
    """Embedded defaults run the whole service on one machine with no configuration."""

    model_config = SettingsConfigDict(env_prefix="EXECUTOR_", frozen=True, extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    policies_dir: Path = PROJECT_ROOT / "policies"
    default_policy: str = "default"
    images_dir: Path = PROJECT_ROOT / "sandbox_images"
    image_prefix: str = "agent-sandbox"
    state_dir: Path = PROJECT_ROOT / ".state"
    docker_url: str | None = None  # None: DOCKER_HOST or the local socket
    runtime: str | None = None  # an OCI runtime registered with the engine, e.g. "runsc"
    reap_grace_s: float = Field(default=60.0, gt=0)

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    result_ttl_s: int = Field(default=24 * 3600, gt=0)
    max_queue_length: int = Field(default=1000, gt=0)
    max_wait_s: float = Field(default=60.0, gt=0)
    worker_concurrency: int = Field(default=2, gt=0)
    visibility_timeout_s: int = Field(default=3600, gt=0)

    api_threads: int = Field(default=100, ge=8, le=10_000)  # sync routes and SSE streams share them
    max_request_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_list_limit: int = Field(default=200, gt=0)
    event_stream_maxlen: int = Field(default=10_000, ge=100)
    heartbeat_ttl_s: float = Field(default=15.0, gt=0)
    janitor_interval_s: float = Field(default=5.0, gt=0)
    cancel_poll_s: float = Field(default=0.25, gt=0)
    worker_op_timeout_s: float = Field(default=30.0, gt=0)  # the API's bound on a session task
    session_idle_timeout_s: int = Field(default=600, gt=0)
    session_max_lifetime_s: int = Field(default=3600, gt=0)
    session_idle_timeout_ceiling_s: int = Field(default=24 * 3600, gt=0)
    session_lifetime_ceiling_s: int = Field(default=7 * 24 * 3600, gt=0)
    log_level: str = "info"
    log_json: bool = True

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.runtime is not None and self.runtime in {"unconfined", "privileged"}:
            raise ValueError(f"runtime {self.runtime!r} is not a sandbox runtime")
        if self.session_idle_timeout_s > self.session_idle_timeout_ceiling_s:
            raise ValueError("session_idle_timeout_s is above session_idle_timeout_ceiling_s")
        if self.session_max_lifetime_s > self.session_lifetime_ceiling_s:
            raise ValueError("session_max_lifetime_s is above session_lifetime_ceiling_s")
        return self
