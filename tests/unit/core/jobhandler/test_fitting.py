"""Logs in a ConfigMap's budget: text when small, gzip when not, head and tail when still too large."""

from __future__ import annotations

import gzip
import hashlib
import random

import pytest

from dataworks.core.jobhandler.fitting import TEXT_LIMIT, Section, fit, render
from dataworks.core.jobhandler.logbuffer import Captured, LogBuffer


def section(data: bytes, keep: int = 1 << 30, name: str = "pod/p/main") -> Section:
    buf = LogBuffer(keep)
    buf.feed(data)
    return Section(name, buf.captured())


def noise(n: int, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    return bytes(rng.getrandbits(8) for _ in range(n)).hex().encode()[:n]


@pytest.mark.parametrize(
    ("data", "budget", "encoding", "cut"),
    [
        pytest.param(b"hello\n", 100_000, "text", False, id="small-is-text"),
        pytest.param(b"line\n" * 20_000, 100_000, "gzip", False, id="large-compressible-is-gzip-whole"),
        pytest.param(noise(400_000), 100_000, "gzip", True, id="large-noise-is-cut"),
        pytest.param(b"x" * (TEXT_LIMIT - 100), 100_000, "text", False, id="just-under-the-text-limit"),
    ],
)
def test_fit(data: bytes, budget: int, encoding: str, cut: bool) -> None:
    got = fit([section(data)], budget)
    assert ("gzip" if got.gz is not None else "text") == encoding
    assert got.stored <= budget
    assert got.truncated is cut
    assert got.original == len(data)
    text = gzip.decompress(got.gz).decode() if got.gz is not None else got.text or ""
    assert text.startswith("==> pod/p/main <==\n")
    if cut:
        assert f"sha256 is {hashlib.sha256(data).hexdigest()}" in text
        assert data[:100].decode() in text  # the head is kept
        assert data[-100:].decode() in text  # and the tail
    else:
        assert data.decode() in text


def test_a_log_cut_while_read_says_so_even_when_small() -> None:
    got = fit([section(b"a" * 50 + b"b" * 50, keep=20)], 100_000)
    assert got.text is not None
    assert got.cut == (True,)
    assert "80 of 100 bytes cut here" in got.text


def test_every_section_shrinks_in_proportion() -> None:
    small, big = section(noise(20_000, 2), name="pod/p/small"), section(noise(800_000, 3), name="pod/p/big")
    got = fit([small, big], 120_000)
    assert got.gz is not None
    assert got.stored <= 120_000
    text = gzip.decompress(got.gz).decode()
    assert text.index("pod/p/small") < text.index("pod/p/big")
    assert got.cut == (True, True)


def test_an_unreadable_log_is_named() -> None:
    text, cut = render([Section("pod/p/main", Captured(b"", b"", 0, "", error="pod gone"))])
    assert b"[log not available: pod gone]" in text
    assert cut == (True,)
