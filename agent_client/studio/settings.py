"""The studio's settings: one frozen object, built by the CLI, refusing unsafe combinations."""

from __future__ import annotations

import ipaddress

from pydantic import BaseModel, ConfigDict, Field, SecretStr, model_validator

LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "::1"})


def is_loopback(host: str) -> bool:
    if host in LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class StudioSettings(BaseModel):
    """Where the studio listens, what it stores in, which tools teams may use.

    Attributes:
        host: the bind address; anything but loopback needs ``token``.
        token: what every request must carry (cookie set by ``/?token=...`` or a bearer
            header); also allowed on loopback.
        database_url: any SQLAlchemy URL for runs, events, files and connections.
        tools: ``module:function`` paths the operator registers; a spec names them by function
            name only, so nothing typed in the page can make the studio import a module.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(default=8765, ge=0, le=65535)
    token: SecretStr | None = None
    database_url: str = "sqlite:///studio.db"
    tools: tuple[str, ...] = ()

    @model_validator(mode="after")
    def _token_off_loopback(self) -> StudioSettings:
        if self.token is not None and len(self.token.get_secret_value()) < 16:
            raise ValueError("the token must be at least 16 characters")
        if not is_loopback(self.host) and self.token is None:
            raise ValueError(
                f"binding to {self.host} lets other machines reach the studio, which holds "
                "keys and runs code: give a token (--token or AGENT_STUDIO_TOKEN), or bind "
                "to 127.0.0.1"
            )
        return self
