"""Run the API under uvicorn, draining first on SIGTERM: /readyz answers 503 for
shutdown_drain_s while requests still complete, so a load balancer stops sending new ones
before the process stops listening. A second signal stops at once."""

from __future__ import annotations

import asyncio
import threading
from types import FrameType

import uvicorn

from executor_service.api.app import create_app
from executor_service.api.services import Services
from executor_service.settings import Settings


class DrainingServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, services: Services, drain_s: float) -> None:
        super().__init__(config)
        self._services = services
        self._drain_s = drain_s

    async def main_loop(self) -> None:
        """uvicorn's loop, ticking once a second instead of ten times: its tick only refreshes
        the Date header (once a second anyway) and looks for an exit, and ten wake-ups a second
        were most of an idle API's CPU. An exit is seen within a second, inside the drain."""
        counter = 0
        while not await self.on_tick(counter):
            counter = (counter + 10) % 864000  # on_tick refreshes the date when counter % 10 == 0
            await asyncio.sleep(1.0)

    def handle_exit(self, sig: int, frame: FrameType | None) -> None:
        if self._drain_s <= 0 or self._services.draining.is_set():
            super().handle_exit(sig, frame)
            return
        self._services.draining.set()
        timer = threading.Timer(self._drain_s, super().handle_exit, args=(sig, frame))
        timer.daemon = True
        timer.start()


def serve(settings: Settings) -> None:
    app = create_app(settings)
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level.lower(),
        access_log=False,
        timeout_keep_alive=settings.keep_alive_s,
    )
    services: Services = app.state.services
    DrainingServer(config, services, settings.shutdown_drain_s).run()
