"""Tool descriptions written from a policy, so a model reads the limits it will actually meet.

The policy is the caller's default (the one a request gets when it names none): over HTTP each
key's own, for stdio the configured key's.
"""

from __future__ import annotations

from executor_service.policy.model import Policy


def _size(n: int) -> str:
    for unit, scale in (("MiB", 1024 * 1024), ("KiB", 1024)):
        if n >= scale and n % scale == 0:
            return f"{n // scale} {unit}"
    return f"{n} bytes"


def _network(policy: Policy) -> str:
    if policy.network.mode == "none":
        return (
            "No network: the code cannot reach the internet, other hosts or DNS "
            "(pip install and HTTP requests fail)."
        )
    allowed = ", ".join(
        f"{d.host or d.cidr}:{','.join(str(p) for p in d.ports)}" for d in policy.network.allow
    )
    return (
        f"Network only to {allowed}, through the service's proxy (HTTP(S)_PROXY is set); "
        "everything else is refused."
    )


def sandbox_facts(policy: Policy) -> str:
    """What every tool that runs code shares: languages, limits, network, what persists."""
    limits, files = policy.limits, policy.files
    languages = ", ".join(sorted(policy.languages))
    return (
        f"Languages: {languages}. Limits (policy {policy.name!r}): {limits.wall_time_s:g} s wall "
        f"time, {limits.memory_mb} MB memory, {limits.cpus:g} CPU, {limits.pids} processes, "
        f"{_size(limits.output_bytes)} of output per stream (more is cut and flagged "
        f"truncated), {limits.workspace_mb} MB of workspace; code up to "
        f"{_size(files.max_code_bytes)}, stdin up to {_size(files.max_stdin_bytes)}. "
        f"{_network(policy)} The code runs as an unprivileged user in /workspace (writable); "
        "the rest of the filesystem is read-only except /tmp."
    )


def tool_descriptions(policy: Policy) -> dict[str, str]:
    facts = sandbox_facts(policy)
    return {
        "run_code": (
            "Run a program once in a fresh, isolated sandbox that is thrown away afterwards, and "
            "return its stdout, stderr, exit code and status (ok, error, timeout, memory_limit, "
            "output_limit). A non-zero exit or a timeout is a normal result to read, not a "
            "failure of the tool. `files` places text files (path -> content) in the workspace "
            "first; `stdin` is fed to the program; `timeout_s` may only lower the wall-time "
            f"limit. Nothing persists after the run: use a session for that. {facts}"
        ),
        "create_session": (
            "Open a session: a sandbox whose /workspace keeps its files between runs, until "
            "close_session or its idle/lifetime expiry (see expires_at). One run at a time per "
            "session. Returns the session_id the other session tools take. Files exist only "
            f"inside that session and are gone when it ends. {facts}"
        ),
        "run_in_session": (
            "Run code in an open session's sandbox, in its language; files the code or "
            "write_file left in /workspace are still there. Same result and rules as run_code "
            "(a non-zero exit or a timeout is a normal result; a timeout kills the run's "
            "processes but keeps the workspace)."
        ),
        "write_file": (
            "Write a text file into a session's /workspace (path relative to it; parent "
            f"directories are made). Up to {_size(policy.files.max_file_in_bytes)} per file."
        ),
        "read_file": (
            "Read a file from a session's /workspace (path relative to it). Text comes back as "
            "UTF-8, anything else base64-encoded (see `encoding`). Up to "
            f"{_size(policy.files.max_file_out_bytes)}."
        ),
        "list_files": (
            "List the regular files in a session's /workspace with their sizes, optionally only "
            "those under `path`."
        ),
        "close_session": (
            "Close a session: its sandbox and every file in it are removed. Closing an ended "
            "session does nothing."
        ),
    }
