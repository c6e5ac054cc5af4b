"""The planner refuses what a policy does not allow and builds what the runner needs."""

from __future__ import annotations

import base64

import pytest

from executor_service.errors import (
    InvalidRequest,
    LimitAboveCeiling,
    PayloadTooLarge,
    PolicyNotAllowed,
    UnknownLanguage,
    UnsafePath,
)
from executor_service.jobs.execution import ExecutionRequest, InputFile
from executor_service.jobs.ids import utcnow
from executor_service.jobs.plan import Planner
from executor_service.jobs.tenant import ApiKey
from executor_service.sandbox.spec import LimitsOverride
from executor_service.settings import Settings


@pytest.fixture(scope="module")
def planner() -> Planner:
    return Planner.load(Settings())


def file_in(path: str, content: bytes) -> InputFile:
    return InputFile.model_validate({"path": path, "content": base64.b64encode(content)})


def request(**fields: object) -> ExecutionRequest:
    values: dict[str, object] = {"language": "python", "code": "print(1)", "policy": "default"}
    values.update(fields)
    return ExecutionRequest.model_validate(values)


def test_code_goes_to_the_runtime_file_and_args_follow_the_command(planner: Planner) -> None:
    plan = planner.plan(
        request(args=["--x"], files=[file_in("./d/in.csv", b"a,b")]),
        labels={"agent-sandbox.execution": "ex_1"},
    )
    assert plan.program.argv == ("python", "main.py", "--x")
    assert plan.program.files == {"main.py": b"print(1)", "d/in.csv": b"a,b"}
    assert plan.config.image == "agent-sandbox/python:1"
    assert plan.config.labels == {"agent-sandbox.execution": "ex_1"}
    assert plan.config.limits == plan.policy.limits


def test_without_code_the_interpreter_runs_the_callers_files(planner: Planner) -> None:
    plan = planner.plan(
        request(code=None, files=[file_in("tool.py", b"")], args=["tool.py"]),
        labels={},
    )
    assert plan.program.argv == ("python", "tool.py")
    with pytest.raises(InvalidRequest) as refused:
        planner.plan(request(code=None), labels={})
    assert refused.value.field == "code"


def test_a_request_may_tighten_but_not_loosen_limits(planner: Planner) -> None:
    plan = planner.plan(request(limits=LimitsOverride(wall_time_s=2, memory_mb=64)), labels={})
    assert plan.config.limits.wall_time_s == 2
    assert plan.config.limits.memory_mb == 64
    with pytest.raises(LimitAboveCeiling) as refused:
        planner.plan(request(limits=LimitsOverride(memory_mb=100_000)), labels={})
    assert refused.value.field == "limits.memory_mb"
    with pytest.raises(InvalidRequest) as floor:
        planner.plan(request(limits=LimitsOverride(memory_mb=1)), labels={})
    assert floor.value.field == "limits.memory_mb"


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a\\b", "a\x00b", "a/../../b"])
def test_unsafe_paths_are_refused_with_their_field(planner: Planner, path: str) -> None:
    with pytest.raises(UnsafePath) as refused:
        planner.plan(request(files=[file_in(path, b"x")]), labels={})
    assert refused.value.field == "files.0.path"


def test_sizes_over_the_policy_are_payload_too_large(planner: Planner) -> None:
    strict = planner.policies["strict"]
    with pytest.raises(PayloadTooLarge) as code:
        planner.plan(
            request(policy="strict", code="#" * (strict.files.max_code_bytes + 1)), labels={}
        )
    assert code.value.field == "code"
    with pytest.raises(PayloadTooLarge) as stdin:
        planner.plan(
            request(policy="strict", stdin="x" * (strict.files.max_stdin_bytes + 1)), labels={}
        )
    assert stdin.value.field == "stdin"
    big = file_in("big", b"x" * (strict.files.max_file_in_bytes + 1))
    with pytest.raises(PayloadTooLarge) as file:
        planner.plan(request(policy="strict", files=[big]), labels={})
    assert file.value.field == "files.0.content"


def test_unknown_language_and_disallowed_policy(planner: Planner) -> None:
    with pytest.raises(UnknownLanguage):
        planner.plan(request(language="cobol"), labels={})
    key = ApiKey(key_id="k", tenant="t", policies=("strict",), created_at=utcnow())
    assert planner.policy_for(key, None).name == "strict"
    with pytest.raises(PolicyNotAllowed):
        planner.policy_for(key, "default")
    with pytest.raises(InvalidRequest):
        planner.policy_for(key, "no-such-policy")


def test_javascript_runs_node_on_main_js_in_the_python_image(planner: Planner) -> None:
    plan = planner.plan(request(language="javascript", code="console.log(1)"), labels={})
    assert plan.program.argv == ("node", "main.js")
    assert plan.program.files == {"main.js": b"console.log(1)"}
    assert plan.config.image == "agent-sandbox/python:1"


def test_a_session_runs_its_images_other_languages_in_that_image(planner: Planner) -> None:
    # Under default, bash alone runs in the shell image; in a python session, in the python one.
    alone = planner.plan(request(language="bash", code="ls"), labels={})
    assert alone.config.image == "agent-sandbox/shell:1"
    for language, argv in (("bash", ("bash", "main.sh")), ("javascript", ("node", "main.js"))):
        plan = planner.plan(
            request(language=language, code="x"), labels={}, sandbox_language="python"
        )
        assert plan.config.image == "agent-sandbox/python:1"
        assert plan.program.argv == argv
    assert planner.languages_in(planner.policies["default"], "shell") == ["bash", "sh"]


def test_a_language_the_sessions_image_lacks_is_refused_naming_what_it_runs(
    planner: Planner,
) -> None:
    with pytest.raises(UnknownLanguage) as refused:
        planner.plan(request(language="python"), labels={}, sandbox_language="bash")
    assert refused.value.field == "language"
    assert refused.value.status_code == 422
    assert "(image 'shell') runs bash, sh, not 'python'" in refused.value.message
    assert "open a session with language 'python'" in refused.value.message
    # A language the policy does not allow at all is refused as such, session or not.
    with pytest.raises(UnknownLanguage) as not_allowed:
        planner.plan(request(language="cobol"), labels={}, sandbox_language="python")
    assert not_allowed.value.message.startswith("policy 'default' runs bash, javascript, python")
