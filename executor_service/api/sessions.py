"""Routes of /v1/sessions: workspaces that persist between executions, and their files."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Response

from executor_service.api.deps import CurrentKey, ServicesDep
from executor_service.api.error_responses import ERROR_RESPONSES
from executor_service.api.services import Services
from executor_service.api.wire.sessions import (
    FileList,
    SessionCreate,
    SessionList,
    SessionView,
    WorkspaceFileView,
    file_list,
    session_list,
    session_view,
)
from executor_service.errors import (
    InvalidRequest,
    LimitAboveCeiling,
    PayloadTooLarge,
    SandboxError,
    ServiceError,
    SessionEnded,
)
from executor_service.jobs.ids import new_id, utcnow
from executor_service.jobs.session import Session, SessionKind, SessionState
from executor_service.jobs.session_commands import (
    EndSession,
    ListFiles,
    Listing,
    ReadFile,
    StartSandbox,
    WriteFile,
)
from executor_service.jobs.tenant import ApiKey
from executor_service.jobs.workspace_path import safe_workspace_path

router = APIRouter(prefix="/v1/sessions", tags=["sessions"], responses=ERROR_RESPONSES)


@router.post("", status_code=201)
def create_session(body: SessionCreate, key: CurrentKey, services: ServicesDep) -> SessionView:
    """Start a session's sandbox; executions name it with `session_id`."""
    settings = services.settings
    policy = services.planner.policy_for(key, body.policy)
    services.planner.runtime(policy, body.language)
    if body.kind == "interpreter" and body.language != "python":
        raise InvalidRequest(
            f"an interpreter session runs Python only, not {body.language!r}: use "
            '"language": "python", or "kind": "plain" for other languages',
            field="kind",
        )
    idle = body.idle_timeout_s or settings.session_idle_timeout_s
    lifetime = body.max_lifetime_s or settings.session_max_lifetime_s
    if idle > settings.session_idle_timeout_ceiling_s:
        raise LimitAboveCeiling(
            f"idle_timeout_s is above {settings.session_idle_timeout_ceiling_s}",
            field="idle_timeout_s",
        )
    if lifetime > settings.session_lifetime_ceiling_s:
        raise LimitAboveCeiling(
            f"max_lifetime_s is above {settings.session_lifetime_ceiling_s}",
            field="max_lifetime_s",
        )
    now = utcnow()
    session = Session(
        id=new_id("se"),
        tenant=key.tenant,
        policy=policy.name,
        language=body.language,
        kind=SessionKind(body.kind),
        created_at=now,
        last_used_at=now,
        idle_timeout_s=idle,
        max_lifetime_s=lifetime,
    )
    services.stores.sessions.create(session, limit=key.max_sessions)
    try:
        services.sessions.call(session.id, StartSandbox())
    except ServiceError:
        # The start was withdrawn or failed: nothing of it remains once the record is ended
        # (a container a worker did make carries the session's label and goes with it).
        services.stores.sessions.update(
            session.id, lambda current: current.model_copy(update={"state": SessionState.DELETED})
        )
        raise
    return session_view(services.stores.sessions.get(session.id))


@router.get("")
def list_sessions(key: CurrentKey, services: ServicesDep) -> SessionList:
    return session_list(services.stores.sessions.of_tenant(key.tenant))


@router.get("/{session_id}")
def get_session(session_id: str, key: CurrentKey, services: ServicesDep) -> SessionView:
    return session_view(services.stores.sessions.get(session_id, key.tenant))


@router.delete("/{session_id}", status_code=204)
def delete_session(session_id: str, key: CurrentKey, services: ServicesDep) -> Response:
    """Remove the session's container and files; deleting an ended session is a no-op."""
    session = services.stores.sessions.get(session_id, key.tenant)
    if session.state == SessionState.ACTIVE:
        services.sessions.call(session_id, EndSession())
    return Response(status_code=204)


@router.put("/{session_id}/files/{path:path}", status_code=201)
def put_file(
    session_id: str,
    path: str,
    content: Annotated[bytes, Body(media_type="application/octet-stream")],
    key: CurrentKey,
    services: ServicesDep,
) -> WorkspaceFileView:
    """Write one file (the raw request body) into the session's workspace."""
    session = _active(services, key, session_id)
    clean = safe_workspace_path(path, field="path")
    ceiling = services.planner.policies[session.policy].files.max_file_in_bytes
    if len(content) > ceiling:
        raise PayloadTooLarge(f"the file is over the policy's {ceiling} bytes", field="body")
    services.sessions.call(session_id, WriteFile(path=clean), content)
    return WorkspaceFileView(path=clean, size_bytes=len(content))


@router.get("/{session_id}/files")
def list_files(session_id: str, key: CurrentKey, services: ServicesDep) -> FileList:
    """The workspace's regular files; `truncated` says the listing stopped at its bound."""
    _active(services, key, session_id)
    reply, _ = services.sessions.call(
        session_id, ListFiles(max_entries=services.settings.max_listed_files)
    )
    if not isinstance(reply, Listing):
        raise SandboxError(f"the worker answered a listing with {reply.kind!r}")
    return file_list(reply)


@router.get(
    "/{session_id}/files/{path:path}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The bytes"}},
)
def read_file(session_id: str, path: str, key: CurrentKey, services: ServicesDep) -> Response:
    session = _active(services, key, session_id)
    clean = safe_workspace_path(path, field="path")
    ceiling = services.planner.policies[session.policy].files.max_file_out_bytes
    _, data = services.sessions.call(session_id, ReadFile(path=clean, max_bytes=ceiling))
    return Response(data or b"", media_type="application/octet-stream")


def _active(services: Services, key: ApiKey, session_id: str) -> Session:
    session = services.stores.sessions.get(session_id, key.tenant)
    if session.state != SessionState.ACTIVE:
        raise SessionEnded(f"session {session_id} is {session.state.value}; open a new one")
    return session
