"""Demultiplexing the engine's framed output."""

from __future__ import annotations

from executor_service.sandbox.exec_output import HEADER, FrameDecoder


def frame(stream: int, payload: bytes) -> bytes:
    return HEADER.pack(stream, len(payload)) + payload


def test_frames_split_across_reads_are_reassembled() -> None:
    seen: list[tuple[str, bytes]] = []
    decoder = FrameDecoder(cap=100, on_output=lambda s, c: seen.append((s, c)))
    data = frame(1, b"out") + frame(2, b"err") + frame(1, b"more")
    for index in range(0, len(data), 5):
        decoder.feed(data[index : index + 5])
    assert decoder.stdout.text() == "outmore"
    assert decoder.stderr.text() == "err"
    assert seen == [("stdout", b"out"), ("stderr", b"err"), ("stdout", b"more")]


def test_output_is_cut_at_the_cap_and_says_so() -> None:
    decoder = FrameDecoder(cap=4)
    decoder.feed(frame(1, b"abcdef"))
    assert decoder.stdout.text() == "abcd"
    assert decoder.stdout.truncated is True
    assert decoder.over_cap is True
    assert decoder.stderr.truncated is False
