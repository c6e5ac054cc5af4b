"""Reading back what the workspace transfer scripts print, and the errors a refusal becomes."""

from __future__ import annotations

import pytest

from executor_service.errors import (
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    SandboxError,
    ServiceError,
    UnsafePath,
)
from executor_service.sandbox.transfer import (
    HEADER_BYTES,
    LIST_MAX_BYTES,
    Problem,
    Refusal,
    fetch_cap,
    parse_fetch,
    parse_listing,
    parse_put,
    put_request,
)


def test_fetch_stream_is_framed_by_size_whatever_the_content_holds() -> None:
    content = b"two\nlines \x00 and 3 ok 9\n"
    data = b"0 ok %d\n" % len(content) + content + b"1 ok 0\n"
    first, second = parse_fetch(data, ["a.bin", "empty"], max_bytes=100)
    assert (first.path, first.content, first.size_bytes, first.refusal) == (
        "a.bin",
        content,
        len(content),
        None,
    )
    assert (second.content, second.refusal) == (b"", None)


@pytest.mark.parametrize(
    ("line", "problem", "at"),
    [
        (b"0 link 1", Problem.LINK, "etc/passwd"),  # the last component is the link
        (b"0 link 0", Problem.LINK, "etc"),  # the directory before it is
        (b"0 notdir 0", Problem.NOT_DIR, "etc"),
        (b"0 readonly 1", Problem.READ_ONLY, "etc"),  # the directory it stands in
        (b"0 readonly 0", Problem.READ_ONLY, ""),  # the workspace itself
    ],
)
def test_a_refusal_names_the_part_of_the_path_at_fault(
    line: bytes, problem: Problem, at: str
) -> None:
    [fetched] = parse_fetch(line + b"\n", ["etc/passwd"], max_bytes=100)
    assert fetched.refusal == Refusal("etc/passwd", problem, at)
    assert fetched.content == b""


def test_a_file_over_the_limit_keeps_its_size() -> None:
    [fetched] = parse_fetch(b"0 big 5000\n", ["big.txt"], max_bytes=1000)
    assert fetched.refusal is not None
    assert fetched.size_bytes == 5000
    assert fetched.refusal.reason == "over the 1000-byte limit"
    error = fetched.refusal.read_error()
    assert isinstance(error, PayloadTooLarge)
    assert "5000" in error.message


@pytest.mark.parametrize(
    "data",
    [b"", b"0 ok 10\nshort", b"1 ok 0\n", b"0 ok\n", b"0 explode 1\n"],
    ids=["nothing", "short-content", "wrong-index", "no-size", "unknown-status"],
)
def test_a_broken_fetch_stream_is_the_engines_failure(data: bytes) -> None:
    with pytest.raises(SandboxError):
        parse_fetch(data, ["a"], max_bytes=100)


def test_the_fetch_cap_holds_every_file_at_the_limit() -> None:
    size = 1000
    header = b"15 ok %d\n" % size
    assert len(header) <= HEADER_BYTES
    assert fetch_cap(16, size) >= 16 * (len(header) + size)


@pytest.mark.parametrize(
    ("problem", "expected"),
    [
        (Problem.LINK, UnsafePath),
        (Problem.TOO_LARGE, PayloadTooLarge),
        (Problem.MISSING, NotFound),
        (Problem.NOT_DIR, NotFound),
        (Problem.IS_DIR, NotFound),
        (Problem.SPECIAL, NotFound),
        (Problem.UNREADABLE, InvalidRequest),
        (Problem.NO_ENTRY, InvalidRequest),
        (Problem.CHANGED, Conflict),
        (Problem.GONE, SandboxError),
    ],
)
def test_read_refusals_are_the_callers_errors_but_a_gone_workspace(
    problem: Problem, expected: type[ServiceError]
) -> None:
    error = Refusal("d/f.txt", problem, "d").read_error()
    assert type(error) is expected
    assert "d/f.txt" in error.message


@pytest.mark.parametrize(
    ("problem", "stderr", "expected"),
    [
        (Problem.LINK, "", UnsafePath),
        (Problem.NOT_DIR, "", InvalidRequest),
        (Problem.IS_DIR, "", InvalidRequest),
        (Problem.READ_ONLY, "", InvalidRequest),
        (Problem.NO_ENTRY, "", InvalidRequest),
        (Problem.WRITE, "dd: error writing './x': No space left on device", PayloadTooLarge),
        (Problem.WRITE, "dd: error writing './x': File too large", PayloadTooLarge),
        (Problem.WRITE, "dd: failed to open './x': Permission denied", InvalidRequest),
        (Problem.WRITE, "mkdir: cannot create directory './d': File exists", Conflict),
        (Problem.WRITE, "dd: failed to open './x': No such file or directory", Conflict),
        (Problem.CHANGED, "", Conflict),
        (Problem.WRITE, "dd: something new", SandboxError),
        (Problem.GONE, "", SandboxError),
    ],
)
def test_write_refusals_become_errors_by_their_cause(
    problem: Problem, stderr: str, expected: type[ServiceError]
) -> None:
    error = Refusal("d/f.txt", problem, "d").write_error(stderr)
    assert type(error) is expected
    assert "d/f.txt" in error.message


def test_a_refusal_says_a_symlink_is_in_the_way() -> None:
    refusal = Refusal("etcdir/passwd", Problem.LINK, "etcdir")
    assert refusal.reason == "passes through a symlink (etcdir)"
    assert "passes through a symlink" in refusal.read_error().message
    assert "passes through a symlink" in refusal.write_error("").message


def test_put_sends_sizes_in_argv_and_contents_in_order_on_stdin() -> None:
    request = put_request({"./a.txt": b"AA", "d/b.txt": b"B"}, then_run=["python", "main.py"])
    assert request.paths == ["a.txt", "d/b.txt"]
    assert request.stdin == b"AAB"
    assert request.argv[4:] == ["run", "2", "a.txt", "2", "d/b.txt", "1", "python", "main.py"]
    assert put_request({"a": b""}).argv[4:] == ["report", "1", "a", "0"]


def test_put_refuses_an_escaping_name_before_anything_runs() -> None:
    with pytest.raises(UnsafePath):
        put_request({"ok.txt": b"", "../../etc/passwd": b"x"})


def test_put_report_gives_the_first_refusal() -> None:
    paths = ["a", "d/e/f"]
    assert parse_put(b"0 ok\n1 ok\n", paths) is None
    assert parse_put(b"0 ok\n1 notdir 0\n", paths) == Refusal("d/e/f", Problem.NOT_DIR, "d")
    with pytest.raises(SandboxError):
        parse_put(b"0 ok\n", paths)


def test_a_listing_over_its_count_is_cut_and_says_so() -> None:
    data = b"".join(b"%d f%d\0" % (n, n) for n in (3, 1, 2))
    listing = parse_listing(data, max_entries=2)
    assert listing.truncated is True
    assert len(listing.files) == 2
    whole = parse_listing(data, max_entries=3)
    assert whole.truncated is False
    assert [(item.path, item.size_bytes) for item in whole.files] == [
        ("f1", 1),
        ("f2", 2),
        ("f3", 3),
    ]


def test_a_listing_cut_mid_name_drops_the_piece_and_says_so() -> None:
    listing = parse_listing(b"1 a\0" + b"2 half-a-na", max_entries=10)
    assert [item.path for item in listing.files] == ["a"]
    assert listing.truncated is True
    assert parse_listing(b"", max_entries=10).truncated is False
    full = b"1 " + b"x" * (LIST_MAX_BYTES - 3) + b"\0"
    assert parse_listing(full, max_entries=10).truncated is True
