"""One behaviour suite for every SandboxRunner: the Docker runner, the pooled runner in front of
it, and the fake the service's unit tests use, so the fake cannot drift from what it stands for.

Only what the protocol promises is checked: workspace files in and out, their refusals, that
removing a sandbox twice is no error, and which images are present. What a run prints is the
real runners' business (the fake plays a script).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from executor_service.errors import NotFound, PayloadTooLarge
from executor_service.sandbox.docker_runner import create_runner
from executor_service.sandbox.pool import PooledRunner
from executor_service.sandbox.runner import Sandbox, SandboxRunner, WorkspaceFile
from executor_service.settings import Settings
from tests.conftest import SandboxFactory
from tests.unit.service.fake_runner import FakeRunner, as_sandbox_runner


@pytest.fixture(params=["docker", "pooled", "fake"])
def any_runner(request: pytest.FixtureRequest, settings: Settings) -> Iterator[SandboxRunner]:
    if request.param == "fake":
        # The fake holds what set-up built, as the engine does.
        built: dict[str, str] = request.getfixturevalue("built_images")
        yield as_sandbox_runner(FakeRunner(images=frozenset(built.values())))
        return
    request.getfixturevalue("docker_client")  # the engine must be there (or the test skips)
    made: SandboxRunner = create_runner(settings)
    if request.param == "pooled":
        made = PooledRunner(
            create_runner(settings), owner="contract:1", size=1, idle_s=60, max_keys=2
        )
    yield made
    made.close()


@pytest.fixture
def session(any_runner: SandboxRunner, sandboxes: SandboxFactory) -> Iterator[Sandbox]:
    sandbox = any_runner.prepare(sandboxes.config(), single_use=False, lifetime_s=120)
    yield sandbox
    any_runner.destroy(sandbox.id)


def test_files_put_are_listed_sorted_with_their_sizes(
    any_runner: SandboxRunner, session: Sandbox
) -> None:
    any_runner.put_files(session, {"b.txt": b"bb", "a/c.txt": b"c"})
    listing = any_runner.list_files(session)
    assert listing.files == [WorkspaceFile("a/c.txt", 1), WorkspaceFile("b.txt", 2)]
    assert not listing.truncated
    cut = any_runner.list_files(session, max_entries=1)
    assert len(cut.files) == 1
    assert cut.truncated


def test_a_file_reads_back_whole_or_is_refused(any_runner: SandboxRunner, session: Sandbox) -> None:
    any_runner.put_files(session, {"data.bin": b"x" * 100})
    assert any_runner.read_file(session, "data.bin", max_bytes=100) == b"x" * 100
    with pytest.raises(PayloadTooLarge):
        any_runner.read_file(session, "data.bin", max_bytes=99)  # refused, never truncated
    with pytest.raises(NotFound):
        any_runner.read_file(session, "missing.txt", max_bytes=100)


def test_a_file_put_again_is_replaced_whole(any_runner: SandboxRunner, session: Sandbox) -> None:
    any_runner.put_files(session, {"f.txt": b"long content"})
    any_runner.put_files(session, {"f.txt": b"short"})
    assert any_runner.read_file(session, "f.txt", max_bytes=100) == b"short"


def test_removing_a_sandbox_twice_is_no_error(
    any_runner: SandboxRunner, sandboxes: SandboxFactory
) -> None:
    sandbox = any_runner.prepare(sandboxes.config())
    any_runner.destroy(sandbox.id)
    any_runner.destroy(sandbox.id)


def test_present_images_are_the_built_ones_only(
    any_runner: SandboxRunner, built_images: dict[str, str]
) -> None:
    built = frozenset(built_images.values())
    never_built = "agent-sandbox-test/never-built:0"
    assert any_runner.present_images([*built, never_built]) == built
    assert any_runner.present_images([never_built]) == frozenset()
    assert any_runner.present_images([]) == frozenset()
