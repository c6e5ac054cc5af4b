"""Events of one execution, in the order its event stream holds them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["state", "output", "egress", "result"]


@dataclass(frozen=True)
class Event:
    """One entry of an execution's stream, as stored. `result` carries no data: readers load the
    record. The API maps each onto its event payload; the stored form is not the wire form."""

    id: str  # the stream entry id, so a reader can resume after it
    kind: EventKind
    data: dict[str, Any]
