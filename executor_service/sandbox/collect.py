"""What a run returns of its workspace: the files its `collect` patterns name, each with its
content or the reason it has none. Pure selection; the runner supplies the listing and the reads.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from executor_service.errors import ServiceError
from executor_service.sandbox import transfer, workspace
from executor_service.sandbox.runner import FileListing
from executor_service.sandbox.spec import OutputFile, Program

Fetch = Callable[[Sequence[str], int], list[transfer.Fetched]]


def collect_files(
    program: Program, *, list_files: Callable[[], FileListing], fetch: Fetch
) -> tuple[OutputFile, ...]:
    """The files the program asked for, each with its content or the reason it has none.

    A glob picks regular files from a listing (symlinks are never listed); a name without
    glob characters is fetched as named, so a missing file or one behind a symlink is
    reported rather than silently absent. A failure here is the file's, never the run's.
    """
    failed: dict[str, str] = {}
    wanted: set[str] = set()
    globs = [pattern for pattern in program.collect if _is_glob(pattern)]
    for pattern in program.collect:
        if _is_glob(pattern):
            continue
        try:
            wanted.add(workspace.safe_relative_path(pattern))
        except ServiceError as exc:
            failed[pattern] = exc.message
    if globs:
        try:
            listing = list_files()
        except ServiceError as exc:
            failed.update(
                {pattern: f"could not list the workspace: {exc.message}" for pattern in globs}
            )
        else:
            wanted.update(
                item.path
                for item in listing.files
                if any(fnmatch.fnmatchcase(item.path, pattern) for pattern in globs)
            )
    chosen = sorted(wanted)[: program.max_files_out]
    files = [_failed_file(path, reason) for path, reason in failed.items()]
    if chosen:
        try:
            fetched = fetch(chosen, program.max_file_out_bytes)
        except ServiceError as exc:
            reason = f"could not be read: {exc.message}"
            files.extend(_failed_file(path, reason) for path in chosen)
        else:
            files.extend(_output_file(item) for item in fetched)
    return tuple(sorted(files, key=lambda item: item.path)[: program.max_files_out])


def _is_glob(pattern: str) -> bool:
    return any(char in pattern for char in "*?[")


def _failed_file(path: str, reason: str) -> OutputFile:
    return OutputFile(path=path, size_bytes=0, content=b"", error=reason)


def _output_file(item: transfer.Fetched) -> OutputFile:
    if item.refusal is None:
        return OutputFile(path=item.path, size_bytes=item.size_bytes, content=item.content)
    return OutputFile(
        path=item.path,
        size_bytes=item.size_bytes,
        content=b"",
        # Only a file over the size limit is "cut"; the others are simply not there to return.
        truncated=item.refusal.problem is transfer.Problem.TOO_LARGE,
        error=item.refusal.reason,
    )
