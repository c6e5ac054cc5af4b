"""The launcher's job and trailer, and the decoder that takes the trailer out of the output."""

from __future__ import annotations

import json

from executor_service.sandbox.exec_output import HEADER, FrameDecoder
from executor_service.sandbox.launcher import TRAILER_PREFIX, Job, runs_in_process


def frame(stream: int, data: bytes) -> bytes:
    return HEADER.pack(stream, len(data)) + data


def test_a_job_says_how_long_its_parts_are() -> None:
    job = Job.create(("python", "main.py"), {"A": "1"}, b"TAR", python=True)
    encoded = job.encode(b"input")
    header, rest = encoded.split(b"\n", 1)
    fields = json.loads(header)
    assert fields == {
        "nonce": job.nonce,
        "argv": ["python", "main.py"],
        "env": {"A": "1"},
        "files": 3,
        "stdin": 5,
        "python": True,
    }
    assert rest == b"TARinput"


def test_only_this_jobs_trailer_gives_an_exit_code() -> None:
    job = Job.create(("bash", "main.sh"), {}, b"", python=False)
    other = Job.create(("bash", "main.sh"), {}, b"", python=False)
    assert job.nonce != other.nonce
    mine = TRAILER_PREFIX + job.nonce.encode() + b" 3\n"
    assert job.exit_code(mine) == 3
    assert other.exit_code(mine) is None  # a forged trailer without the nonce
    assert job.exit_code(TRAILER_PREFIX + job.nonce.encode() + b" x\n") is None


def test_the_trailer_is_taken_out_of_both_streams_even_split_across_frames() -> None:
    job = Job.create(("python", "main.py"), {}, b"", python=True)
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
