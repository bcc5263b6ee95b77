"""A log's head, tail, size and checksum in bounded memory."""

from __future__ import annotations

import hashlib

import pytest

from dataworks.core.jobhandler.logbuffer import LogBuffer


@pytest.mark.parametrize(
    ("chunks", "keep", "head", "tail", "complete"),
    [
        pytest.param([], 10, b"", b"", True, id="nothing-printed"),
        pytest.param([b"abc"], 10, b"abc", b"", True, id="short-is-all-head"),
        pytest.param([b"abcdefghij"], 10, b"abcde", b"fghij", True, id="exactly-keep"),
        pytest.param([b"abcdefghijkl"], 10, b"abcde", b"hijkl", False, id="one-chunk-cut"),
        pytest.param([b"ab", b"cdefg", b"hijklmnop", b"qr"], 6, b"abc", b"pqr", False, id="many-chunks"),
        pytest.param([b"x" * 1000, b"yz"], 4, b"xx", b"yz", False, id="tail-trimmed-from-a-long-run"),
        pytest.param([b"abcdef"], 1, b"a", b"", False, id="keep-one-byte"),
    ],
)
def test_head_tail_size_and_sha(
    chunks: list[bytes], keep: int, head: bytes, tail: bytes, complete: bool
) -> None:
    buf = LogBuffer(keep)
    for c in chunks:
        buf.feed(c)
    got = buf.captured()
    everything = b"".join(chunks)
    assert (got.head, got.tail) == (head, tail)
    assert got.size == len(everything)
    assert got.sha256 == hashlib.sha256(everything).hexdigest()
    assert got.complete is complete


def test_memory_is_bounded_whatever_is_fed() -> None:
    buf = LogBuffer(1000)
    for _ in range(10_000):
        buf.feed(b"0123456789" * 10)
        assert len(buf._head) + len(buf._tail) <= 1000 + 2 * 500
    assert buf.captured().size == 1_000_000


def test_an_error_is_kept_with_what_was_read() -> None:
    buf = LogBuffer(100)
    buf.feed(b"partial")
    got = buf.captured(error="pod gone")
    assert got.head == b"partial"
    assert not got.complete
