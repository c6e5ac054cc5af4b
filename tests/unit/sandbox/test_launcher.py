"""The launcher's job and trailer, and the decoder that takes the trailer out of the output."""

from __future__ import annotations

import pytest

from executor_service.sandbox.exec_output import HEADER, FrameDecoder
from executor_service.sandbox.launcher import TRAILER_PREFIX, Job, runs_in_process


def frame(stream: int, data: bytes) -> bytes:
    return HEADER.pack(stream, len(data)) + data


def test_a_job_says_how_long_its_parts_are() -> None:
    files = {"main.py": b"print(1)", "data/in.csv": b"a,b\n"}
    job = Job.create(("python", "main.py", "x y"), {"A": "1=2"}, files, python=True)
    encoded = job.encode(b"input")
    size, rest = encoded.split(b"\n", 1)
    header, tail = rest[: int(size)], rest[int(size) :]
    assert header.split(b"\x00") == [
        job.nonce.encode(),
        b"1",
        b"5",
        b"2",
        b"main.py",
        b"8",
        b"data/in.csv",
        b"4",
        b"3",
        b"python",
        b"main.py",
        b"x y",
        b"A=1=2",
    ]
    assert tail == b"print(1)a,b\ninput"


def test_a_nul_in_an_argument_or_variable_is_refused() -> None:
    with pytest.raises(ValueError, match="NUL"):
        Job.create(("bash", "main.sh", "a\x00b"), {}, {}, python=False).encode(b"")
    with pytest.raises(ValueError, match="NUL"):
        Job.create(("bash", "main.sh"), {"A": "\x00"}, {}, python=False).encode(b"")


def test_only_this_jobs_trailer_gives_an_exit_code() -> None:
    job = Job.create(("bash", "main.sh"), {}, {}, python=False)
    other = Job.create(("bash", "main.sh"), {}, {}, python=False)
    assert job.nonce != other.nonce
    mine = TRAILER_PREFIX + job.nonce.encode() + b" 3\n"
    assert job.exit_code(mine) == 3
    assert other.exit_code(mine) is None  # a forged trailer without the nonce
    assert job.exit_code(TRAILER_PREFIX + job.nonce.encode() + b" x\n") is None


def test_the_trailer_is_taken_out_of_both_streams_even_split_across_frames() -> None:
    job = Job.create(("python", "main.py"), {}, {}, python=True)
    trailer = TRAILER_PREFIX + job.nonce.encode() + b" 0\n"
    seen: list[tuple[str, bytes]] = []
    decoder = FrameDecoder(
        1024, lambda name, data: seen.append((name, data)), lambda line: job.exit_code(line) == 0
    )
    decoder.feed(frame(2, b"warning\n" + trailer[:10]))
    decoder.feed(frame(1, b"out\n" + trailer))
    assert decoder.trailer is None  # stderr's is not complete: its output may still come
    decoder.feed(frame(2, trailer[10:]))
    decoder.finish()
    assert decoder.trailer == trailer
    assert bytes(decoder.stderr.data) == b"warning\n"
    assert seen == [("stderr", b"warning\n"), ("stdout", b"out\n")]


def test_a_nul_in_ordinary_stderr_is_output_not_a_trailer() -> None:
    decoder = FrameDecoder(1024, None, lambda line: False)
    decoder.feed(frame(2, b"a\x00b\nc\x00"))
    decoder.finish()
    assert decoder.trailer is None
    assert bytes(decoder.stderr.data) == b"a\x00b\nc\x00"


def test_python_runs_in_process_only_as_a_plain_script() -> None:
    assert runs_in_process(("python", "main.py", "--flag"))
    assert not runs_in_process(("python", "-m", "pip"))
    assert not runs_in_process(("python",))
    assert not runs_in_process(("bash", "main.sh"))
