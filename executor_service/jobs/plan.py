"""Turn a request and its policy into the sandbox to prepare and the program to run in it.

The API calls this to refuse a bad request before it is queued; the worker calls it again to run
the request, so what is checked and what is run can never drift apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace

from pydantic import ValidationError

from executor_service.egress.rules import EgressGrant
from executor_service.errors import (
    InvalidRequest,
    PayloadTooLarge,
    PolicyNotAllowed,
    UnknownLanguage,
)
from executor_service.jobs.execution import ExecutionRequest
from executor_service.jobs.tenant import ApiKey
from executor_service.jobs.workspace_path import safe_workspace_path
from executor_service.policy.loader import load_policies
from executor_service.policy.model import Policy
from executor_service.sandbox.catalogue import Catalogue, LanguageRuntime, load_catalogue
from executor_service.sandbox.spec import Limits, LimitsOverride, Program, SandboxConfig
from executor_service.settings import Settings


@dataclass(frozen=True)
class Plan:
    policy: Policy
    config: SandboxConfig
    program: Program
    egress: EgressGrant | None  # None: no network at all


class Planner:
    """Holds the policies and the image catalogue, loaded once at start-up."""

    def __init__(
        self, settings: Settings, catalogue: Catalogue, policies: Mapping[str, Policy]
    ) -> None:
        self.settings = settings
        self.catalogue = catalogue
        self.policies = policies

    @classmethod
    def load(cls, settings: Settings) -> Planner:
        catalogue = load_catalogue(settings.images_dir)
        return cls(settings, catalogue, load_policies(settings.policies_dir, catalogue))

    def allowed_policies(self, key: ApiKey) -> list[Policy]:
        return [policy for name, policy in sorted(self.policies.items()) if key.may_use(name)]

    def policy_for(self, key: ApiKey, name: str | None) -> Policy:
        """The named policy, or the key's default; refuse one the key may not use."""
        if name is None:
            if key.may_use(self.settings.default_policy):
                name = self.settings.default_policy
            elif key.policies:
                name = key.policies[0]
            else:
                raise PolicyNotAllowed("this key may use no policy", field="policy")
        policy = self.policies.get(name)
        if policy is None:
            raise InvalidRequest(f"there is no policy {name!r}", field="policy")
        if not key.may_use(name):
            raise PolicyNotAllowed(f"this key may not use policy {name!r}", field="policy")
        return policy

    def runtime(
        self, policy: Policy, language: str, *, sandbox_language: str | None = None
    ) -> tuple[str, LanguageRuntime]:
        """The image and runtime that run `language` under `policy`.

        `sandbox_language` is the language a sandbox was made for (a session's, at creation):
        its image then runs the request, which is how one session's workspace serves several
        languages. A language the policy allows but that image lacks is refused, naming what it
        does run, rather than run in a second sandbox with another workspace.
        """
        image = policy.languages.get(language)
        runtime = None if image is None else self.catalogue.runtime(image, language)
        if image is None or runtime is None:
            known = ", ".join(sorted(policy.languages))
            raise UnknownLanguage(
                f"policy {policy.name!r} runs {known}, not {language!r}", field="language"
            )
        if sandbox_language is None or sandbox_language == language:
            return image, runtime
        image, _ = self.runtime(policy, sandbox_language)
        runtime = self.catalogue.runtime(image, language)
        if runtime is None:
            known = ", ".join(self.languages_in(policy, image))
            raise UnknownLanguage(
                f"this session was opened for {sandbox_language!r}: its sandbox (image {image!r}) "
                f"runs {known}, not {language!r}; open a session with language {language!r} "
                f"to run it",
                field="language",
            )
        return image, runtime

    def languages_in(self, policy: Policy, image: str) -> list[str]:
        """The languages `policy` allows that a sandbox of `image` can run, sorted."""
        return sorted(
            language
            for language in policy.languages
            if self.catalogue.runtime(image, language) is not None
        )

    def sandbox_config(
        self,
        policy: Policy,
        language: str,
        limits: Limits,
        labels: Mapping[str, str],
        *,
        egress_name: str | None = None,
    ) -> SandboxConfig:
        """The sandbox `language` is run in (a session's: its creation language);
        `egress_name` (an execution's or a session's id) names the sandbox's proxy directory;
        None gives a sandbox no way out at all."""
        image, _ = self.runtime(policy, language)
        runtime = policy.runtime if policy.runtime != "runc" else self.settings.runtime
        return SandboxConfig(
            image=self.catalogue.image_ref(self.settings.image_prefix, image),
            limits=limits,
            mounts=tuple(mount.to_mount() for mount in policy.mounts),
            runtime=runtime,
            labels=dict(labels),
            egress_dir=None if egress_name is None else str(self.settings.egress_dir / egress_name),
            ready_python=self.catalogue.runtime(image, "python") is not None,
        )

    def effective_limits(self, policy: Policy, override: LimitsOverride | None) -> Limits:
        """The policy's limits lowered by the request; a value under the hard floors is refused."""
        lowered = policy.effective_limits(override)
        try:
            return Limits.model_validate(lowered.model_dump())
        except ValidationError as exc:
            first = exc.errors()[0]
            where = "limits." + ".".join(str(part) for part in first["loc"])
            raise InvalidRequest(f"{where}: {first['msg']}", field=where) from exc

    def plan(
        self,
        request: ExecutionRequest,
        *,
        labels: Mapping[str, str],
        egress_name: str | None = None,
        name: str | None = None,
        sandbox_language: str | None = None,
    ) -> Plan:
        """Check every size, path and limit of a request, then build what the runner needs.

        `egress_name` names the proxy directory of a sandbox that gets egress (see
        sandbox_config), and `name` its container; the API, which only checks, leaves them out.
        `sandbox_language` is a session's creation language: its image runs the request (see
        runtime); None for a sandbox of the request's own.
        """
        policy = self.policies.get(request.policy)
        if policy is None:
            raise InvalidRequest(f"there is no policy {request.policy!r}", field="policy")
        _, runtime = self.runtime(policy, request.language, sandbox_language=sandbox_language)
        limits = self.effective_limits(policy, request.limits)
        egress = policy.egress_grant(request.network)
        files = _input_files(request, policy, runtime)
        collect = tuple(
            safe_workspace_path(pattern, field=f"collect.{index}")
            for index, pattern in enumerate(request.collect)
        )
        if request.code is None:
            # No code: run the interpreter on the caller's own files, e.g. args ["tool.py"].
            argv = tuple(part for part in runtime.command if part != runtime.file)
        else:
            argv = runtime.command
        program = Program(
            argv=argv + request.args,
            files=files,
            stdin=request.stdin.encode(),
            collect=collect,
            max_files_out=policy.files.max_files_out,
            max_file_out_bytes=policy.files.max_file_out_bytes,
        )
        config = self.sandbox_config(
            policy,
            sandbox_language or request.language,
            limits,
            labels,
            egress_name=egress_name if egress is not None else None,
        )
        if name is not None:
            config = replace(config, name=name)
        return Plan(policy=policy, config=config, program=program, egress=egress)


def _input_files(
    request: ExecutionRequest, policy: Policy, runtime: LanguageRuntime
) -> dict[str, bytes]:
    sizes = policy.files
    if request.code is None and not request.files:
        raise InvalidRequest("give code, files, or both", field="code")
    if request.code is not None and len(request.code.encode()) > sizes.max_code_bytes:
        raise PayloadTooLarge(
            f"code is over policy {policy.name!r}'s {sizes.max_code_bytes} bytes", field="code"
        )
    if len(request.stdin.encode()) > sizes.max_stdin_bytes:
        raise PayloadTooLarge(
            f"stdin is over policy {policy.name!r}'s {sizes.max_stdin_bytes} bytes",
            field="stdin",
        )
    if len(request.files) > sizes.max_files_in:
        raise PayloadTooLarge(
            f"policy {policy.name!r} takes at most {sizes.max_files_in} files", field="files"
        )
    files: dict[str, bytes] = {}
    for index, item in enumerate(request.files):
        path = safe_workspace_path(item.path, field=f"files.{index}.path")
        if len(item.content) > sizes.max_file_in_bytes:
            raise PayloadTooLarge(
                f"{path} is over policy {policy.name!r}'s {sizes.max_file_in_bytes} bytes",
                field=f"files.{index}.content",
            )
        if path in files or (request.code is not None and path == runtime.file):
            raise InvalidRequest(f"{path} is given twice", field=f"files.{index}.path")
        files[path] = item.content
    if request.code is not None:
        files[runtime.file] = request.code.encode()
    return files
