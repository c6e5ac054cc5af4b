"""`agent-client run` names a model server or sandbox service that does not answer before it
starts (issue 11: it said "Connection error." after the model client's ~16 s of retries)."""

from __future__ import annotations

import pytest

from agent_client.cli import main
from tests.support.scripted_openai import scripted_openai
from tests.unit.service.redis_server import free_port


def _run(model_url: str, service_url: str) -> int:
    return main(
        [
            "run",
            "--task",
            "Sum [1, 2, 3].",
            "--model-url",
            model_url,
            "--model",
            "m",
            "--service-url",
            service_url,
            "--service-key",
            "ask_unused",
        ]
    )


def test_nothing_answering_is_named_with_how_to_start_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    model_url = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens on either
    service_url = f"http://127.0.0.1:{free_port()}"
    assert _run(model_url, service_url) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert f"the model server at {model_url} did not answer" in out
    assert "scripts/local-model.sh" in out
    assert f"the sandbox service at {service_url} did not answer" in out
    assert "scripts/start.sh" in out
    assert "Connection error." not in out  # the model client was never asked


def test_a_model_server_that_answers_anything_passes_the_check(
    capsys: pytest.CaptureFixture[str],
) -> None:
    service_url = f"http://127.0.0.1:{free_port()}"
    with scripted_openai() as server:
        assert _run(server.url, service_url) == 1
    out = " ".join(capsys.readouterr().out.split())
    assert "model server" not in out
    assert f"the sandbox service at {service_url} did not answer" in out


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["--version"])
    assert done.value.code == 0
    assert capsys.readouterr().out.startswith("agent-client 0.")


def test_a_busy_server_that_took_the_connection_counts_as_there(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A local model server busy with another reply answers nothing, not even /models, until it
    is done: it listens, so the run may go ahead and wait its turn."""
    import asyncio
    import socket

    import agent_client.cli as cli

    monkeypatch.setattr(cli, "PREFLIGHT_TIMEOUT_S", 0.3)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)  # accepts, never answers
        url = f"http://127.0.0.1:{busy.getsockname()[1]}/v1/models"
        assert asyncio.run(cli._unanswered(url)) is None
    assert asyncio.run(cli._unanswered(url)) is not None  # closed now: refused
