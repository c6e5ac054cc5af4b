"""The one settings object of a service process, read from EXECUTOR_* variables at start-up."""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PACKAGE_DIR = Path(__file__).resolve().parent
# The checkout this module runs from, when it does (an editable install or `uv run` in it).
PROJECT_ROOT = PACKAGE_DIR.parent


def _checkout() -> Path | None:
    """The source tree, if this is one: its policies and catalogue are the ones being edited."""
    if (PROJECT_ROOT / "pyproject.toml").is_file() and (PROJECT_ROOT / "policies").is_dir():
        return PROJECT_ROOT
    return None


def shipped(name: str) -> Path:
    """A data folder (`policies`, `sandbox_images`): the checkout's, else the installed wheel's
    copy inside the package (pyproject's hatch force-include puts it there)."""
    root = _checkout()
    return root / name if root is not None else PACKAGE_DIR / name


def default_state_dir() -> Path:
    """The checkout's .state; installed, the user's state directory (never site-packages)."""
    root = _checkout()
    if root is not None:
        return root / ".state"
    base = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(base) / "agent-sandbox"


class Settings(BaseSettings):
    """Embedded defaults run the whole service on one machine with no configuration."""

    model_config = SettingsConfigDict(env_prefix="EXECUTOR_", frozen=True, extra="ignore")

    redis_url: str = "redis://127.0.0.1:6379/0"
    policies_dir: Path = Field(default_factory=lambda: shipped("policies"))
    default_policy: str = "default"
    images_dir: Path = Field(default_factory=lambda: shipped("sandbox_images"))
    image_prefix: str = "agent-sandbox"
    state_dir: Path = Field(default_factory=default_state_dir)
    docker_url: str | None = None  # None: DOCKER_HOST or the local socket
    runtime: str | None = None  # an OCI runtime registered with the engine, e.g. "runsc"
    reap_grace_s: float = Field(default=60.0, gt=0)
    # Every container this deployment makes carries its instance name, and its reapers and janitor
    # touch no other: two deployments (or two test runs) can share one engine without removing
    # each other's sandboxes.
    instance: str = Field(default="default", pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    # Egress: where each sandbox's proxy socket lives on the host (the engine bind-mounts it), and
    # names the proxy resolves before DNS (like docker's --add-host; e.g. a private package index).
    egress_dir: Path = Path("/run/agent-sandbox/egress")
    egress_extra_hosts: dict[str, str] = {}
    # TESTS ONLY: networks whose private addresses the proxy may reach, so a test can serve on this
    # machine. The host's own addresses and the metadata address stay denied whatever this says.
    egress_unsafe_test_networks: tuple[str, ...] = ()

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    result_ttl_s: int = Field(default=24 * 3600, gt=0)
    max_queue_length: int = Field(default=1000, gt=0)
    max_wait_s: float = Field(default=60.0, gt=0)
    worker_concurrency: int = Field(default=2, gt=0)
    lease_margin_s: float = Field(default=120.0, gt=0)  # a claim lasts wall time + this
    requeue_after_s: float = Field(default=30.0, gt=0)  # queued this long and not in the broker
    max_queue_age_s: int = Field(default=3600, gt=0)  # queued longer than this: failed
    final_write_retry_s: float = Field(default=60.0, ge=0)  # retrying a result's write
    require_persistence: bool = True  # refuse to start on a Redis without AOF

    api_threads: int = Field(default=100, ge=8, le=10_000)  # sync routes and SSE streams share them
    max_request_bytes: int = Field(default=64 * 1024 * 1024, gt=0)
    max_list_limit: int = Field(default=200, gt=0)
    max_listed_files: int = Field(default=10_000, gt=0)  # one workspace listing
    event_stream_maxlen: int = Field(default=10_000, ge=100)
    heartbeat_ttl_s: float = Field(default=6.0, gt=0)
    janitor_interval_s: float = Field(default=5.0, gt=0)
    # A run's tick: how late a cancel is seen, and live output reaches the event stream.
    cancel_poll_s: float = Field(default=0.25, gt=0)
    session_op_threads: int = Field(default=2, gt=0, le=64)  # per worker, apart from runs
    session_op_claim_s: float = Field(default=10.0, gt=0)  # no worker took it: 503, no effect
    session_op_run_s: float = Field(default=60.0, gt=0)  # a taken operation's bound
    stream_lease_s: float = Field(default=30.0, gt=0)  # an SSE slot outlives a dead API this long
    shutdown_drain_s: float = Field(default=3.0, ge=0)  # /readyz is 503 this long before exit
    # An idle client connection is kept this long. Longer than any client's own idle expiry
    # (httpx and the agent client: 5 s), so the client always closes first: when both sides
    # used 5 s, a request sent just as the server closed the connection met "connection reset".
    keep_alive_s: int = Field(default=75, ge=1)
    metrics_public: bool = False  # True: /metrics without a key (a scraper on a private bind)
    session_idle_timeout_s: int = Field(default=600, gt=0)
    session_max_lifetime_s: int = Field(default=3600, gt=0)
    session_idle_timeout_ceiling_s: int = Field(default=24 * 3600, gt=0)
    session_lifetime_ceiling_s: int = Field(default=7 * 24 * 3600, gt=0)
    # Warm pool, per worker process: hardened single-use sandboxes created and started ahead of
    # need, per (image, runtime, limits); each serves one run and is destroyed after it.
    pool_size: int = Field(default=2, ge=0, le=64)  # idle members per key; 0 turns the pool off
    pool_idle_s: float = Field(default=120.0, gt=0)  # an idle member older than this is replaced
    pool_max_keys: int = Field(default=4, ge=1, le=64)  # how many keys are kept warm at once
    auth_cache_s: float = Field(default=2.0, ge=0)  # an API key's lookup is reused this long
    log_level: str = "info"
    log_json: bool = True

    @model_validator(mode="after")
    def _refuse_unsafe(self) -> Settings:
        if self.runtime is not None and self.runtime in {"unconfined", "privileged"}:
            raise ValueError(f"runtime {self.runtime!r} is not a sandbox runtime")
        for network in self.egress_unsafe_test_networks:
            ipaddress.ip_network(network)  # a typo must stop start-up, not open or close egress
        for name, address in self.egress_extra_hosts.items():
            ipaddress.ip_address(address)
            if not name or name != name.lower():
                raise ValueError(f"egress_extra_hosts: {name!r} must be a lower-case host name")
        if self.session_idle_timeout_s > self.session_idle_timeout_ceiling_s:
            raise ValueError("session_idle_timeout_s is above session_idle_timeout_ceiling_s")
        if self.session_max_lifetime_s > self.session_lifetime_ceiling_s:
            raise ValueError("session_max_lifetime_s is above session_lifetime_ceiling_s")
        return self
