"""The worker's side of the kernel bridge's records: split across frames, forged, garbled."""

from __future__ import annotations

import base64
import json

from executor_service.sandbox.exec_output import HEADER
from executor_service.sandbox.kernel_bridge import BRIDGE, CellDecoder, cell_job


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


def record(kind: bytes, payload: bytes) -> bytes:
    return kind + str(len(payload)).encode() + b"\n" + payload


def result(nonce: str, **fields: object) -> bytes:
    answer = {
        "nonce": nonce,
        "status": "ok",
        "exit_code": 0,
        "outputs": [],
        "interrupted": False,
        "dropped": 0,
        "notice": "",
    }
    return record(b"R", json.dumps({**answer, **fields}).encode())


def test_records_split_anywhere_give_the_output_and_the_result() -> None:
    seen: list[tuple[str, bytes]] = []
    decoder = CellDecoder(1024, lambda stream, data: seen.append((stream, data)), "n1")
    png = base64.b64encode(b"\x89PNG-bytes").decode()
    outputs = [{"mime_type": "image/png", "data": png, "truncated": False, "size_bytes": 10}]
    data = frame(
        1, record(b"O", b"hello\n") + record(b"E", b"oops\n") + result("n1", outputs=outputs)
    )
    for index in range(len(data)):  # one byte at a time: every split point
        decoder.feed(data[index : index + 1])
    assert decoder.stdout.text() == "hello\n"
    assert decoder.stderr.text() == "oops\n"
    assert seen == [("stdout", b"hello\n"), ("stderr", b"oops\n")]
    assert decoder.report is not None
    [image] = decoder.report.outputs
    assert (image.mime_type, image.data) == ("image/png", b"\x89PNG-bytes")


def test_a_result_under_another_nonce_is_not_this_cells() -> None:
    decoder = CellDecoder(1024, None, "mine")
    decoder.feed(frame(1, result("forged", status="ok")))
    assert decoder.report is None
    decoder.feed(frame(1, result("mine", status="error", exit_code=1)))
    assert decoder.report is not None
    assert decoder.report.status == "error"


def test_bytes_that_are_no_record_end_the_cell_as_garbled() -> None:
    decoder = CellDecoder(1024, None, "n")
    decoder.feed(frame(1, b"plain text that is no record\n"))
    assert decoder.garbled
    assert decoder.report is None


def test_the_bridges_own_stderr_is_the_cells_stderr() -> None:
    decoder = CellDecoder(1024, None, "n")
    decoder.feed(frame(2, b"Traceback (most recent call last):\n"))
    assert decoder.stderr.text().startswith("Traceback")


def test_output_over_the_cap_is_cut_and_said() -> None:
    decoder = CellDecoder(1024, None, "n")
    decoder.feed(frame(1, record(b"O", b"x" * 2000)))
    assert len(decoder.stdout.data) == 1024
    assert decoder.over_cap


def test_a_cell_travels_as_a_job_whose_stdin_is_the_code() -> None:
    job = cell_job({"data.txt": b"abc"})
    encoded = job.encode(b"print(1)")
    assert encoded.endswith(b"abcprint(1)")
    assert job.nonce.encode() in encoded
    compile(BRIDGE, "<bridge>", "exec")  # the script the sandbox runs is valid Python
