"""`agent-client run` with no model server: the error names the URL it could not reach."""

from __future__ import annotations

import pytest

from agent_client.cli import main
from tests.unit.service.redis_server import free_port

pytestmark = [pytest.mark.e2e, pytest.mark.docker, pytest.mark.redis]


def test_an_unreachable_model_server_is_named_with_a_hint(
    service: tuple[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    model_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    code = main(
        [
            "run",
            "--task",
            "Sum [1, 2, 3].",
            "--base-url",
            model_url,
            "--model",
            "m",
            "--api-key",
            "k",
            "--service-url",
            service[0],
            "--service-key",
            service[1],
        ]
    )
    out = capsys.readouterr().out
    assert code == 1
    assert f"the model server at {model_url} did not answer" in " ".join(out.split())
    assert "scripts/local-model.sh" in out
