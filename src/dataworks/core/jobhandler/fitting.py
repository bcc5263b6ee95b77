"""Fitting captured logs into a ConfigMap's budget (pure layer).

Logs are kept as text while small (`kubectl get cm -o yaml` shows them),
gzip-compressed into binaryData when not, and cut to each section's head and
tail when even that is too large. Every cut names the bytes it dropped and
the sha256 of the whole section, so a reader knows exactly what is missing.
"""

from __future__ import annotations

import gzip
from dataclasses import dataclass

from dataworks.core.jobhandler.logbuffer import Captured

TEXT_LIMIT = 64 * 1024  # logs up to this size stay text; above it they are compressed
_SHRINK = 0.9  # each retry aims this far below the budget (gzip's ratio shifts as text is cut)


@dataclass(frozen=True)
class Section:
    header: str  # e.g. "pod/etl-0-x7k2p/main"
    log: Captured


@dataclass(frozen=True)
class Fitted:
    text: str | None  # the logs as text, or None when compressed
    gz: bytes | None  # the logs gzip-compressed, or None when text
    kept: int  # bytes of log text kept (before compression)
    original: int  # bytes the containers printed
    cut: tuple[bool, ...]  # for each section: whether it lost its middle (to the capture or the budget)

    @property
    def truncated(self) -> bool:
        return any(self.cut)

    @property
    def stored(self) -> int:
        """Bytes the logs take in the ConfigMap."""
        return len(self.gz) if self.gz is not None else len((self.text or "").encode())


def _cut(data: bytes, keep: int) -> tuple[bytes, bytes]:
    head = keep - keep // 2
    return data[:head], data[len(data) - keep // 2 :] if keep // 2 else b""


def render(sections: list[Section], scale: float = 1.0) -> tuple[bytes, tuple[bool, ...]]:
    """All sections as one text, each keeping `scale` of what was captured; and which were cut."""
    out = bytearray()
    cut = []
    for s in sections:
        log = s.log
        out += f"==> {s.header} <==\n".encode()
        cut.append(bool(log.error))
        if log.error:
            out += f"[log not available: {log.error}]\n".encode()
            continue
        head, tail = log.head, log.tail
        if scale < 1.0:
            head, tail = _cut(head + tail, int(log.kept * scale))
        if len(head) + len(tail) == log.size:
            out += head + tail
        else:
            cut[-1] = True
            dropped = log.size - len(head) - len(tail)
            out += head
            out += (
                f"\n[... {dropped:,} of {log.size:,} bytes cut here; the whole log's sha256 is "
                f"{log.sha256} ...]\n"
            ).encode()
            out += tail
        if out and not out.endswith(b"\n"):
            out += b"\n"
    return bytes(out), tuple(cut)


def fit(sections: list[Section], budget: int) -> Fitted:
    """The logs in at most `budget` bytes: text, else gzip, else gzip of head and tail."""
    original = sum(s.log.size for s in sections)
    text, cut = render(sections)
    if len(text) <= min(TEXT_LIMIT, budget):
        return Fitted(text.decode("utf-8", "replace"), None, len(text), original, cut)
    scale = 1.0
    while True:
        gz = gzip.compress(text, compresslevel=6, mtime=0)
        if len(gz) <= budget:
            return Fitted(None, gz, len(text), original, cut)
        scale *= budget / len(gz) * _SHRINK
        text, cut = render(sections, scale)
        if scale < 1e-6:  # headers alone exceed the budget: keep what fits of them
            all_cut = (True,) * len(sections)
            return Fitted(None, gzip.compress(text[: budget // 2], mtime=0), budget // 2, original, all_cut)
