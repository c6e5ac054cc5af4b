"""Events of one execution, in the order its event stream holds them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Literal

EventKind = Literal["state", "output", "egress", "result"]


@dataclass(frozen=True)
class Event:
    """One entry of an execution's stream. `result` carries no data: readers load the record."""

    id: str  # the stream entry id, so a reader can resume after it
    kind: EventKind
    data: dict[str, Any]

    def data_json(self) -> str:
        return json.dumps(self.data, separators=(",", ":"))
