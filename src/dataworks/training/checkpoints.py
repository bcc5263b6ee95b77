"""Atomic checkpoints for training scripts (standard library only): save, find the latest, save on SIGTERM.

Layout: ``<dir>/ckpt-<epoch:06d>-<step:09d>/`` holds ``payload`` (the caller's
bytes) and ``manifest.json`` (epoch, step, time, size, sha256, metadata). Both
are written to a temporary file in the same directory, fsynced and renamed
into place, the manifest last: a checkpoint is valid only when its manifest
exists and the payload's size and sha256 match it. A crash in the middle of a
save therefore leaves the previous checkpoint as the latest.

One process should save into a directory (rank 0, or one directory per rank).
"""

from __future__ import annotations

import atexit
import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO

CHECKPOINT_DIR_ENV = "DATAWORKS_CHECKPOINT_DIR"
ATTEMPT_ENV = "DATAWORKS_ATTEMPT"
PAYLOAD = "payload"
MANIFEST = "manifest.json"
SIGTERM_EXIT = 128 + signal.SIGTERM  # 143: what the kubelet reports for a pod stopped by SIGTERM
_NAME = re.compile(r"ckpt-(\d{6,})-(\d{9,})")
_CHUNK = 1 << 20

Payload = bytes | Callable[[BinaryIO], object]


@dataclass(frozen=True)
class Checkpoint:
    """A valid checkpoint: its directory, position in training, save time and user metadata."""

    path: Path
    epoch: int
    step: int
    time: float
    metadata: dict[str, Any] = field(default_factory=dict, hash=False)

    @property
    def payload_path(self) -> Path:
        return self.path / PAYLOAD

    def read(self) -> bytes:
        """The payload's bytes."""
        return self.payload_path.read_bytes()

    def open(self) -> BinaryIO:
        """The payload as a binary file object (for torch.load and the like); the caller closes it."""
        return self.payload_path.open("rb")


def checkpoint_dir() -> Path:
    """The checkpoint directory: ``$DATAWORKS_CHECKPOINT_DIR``, or ``./checkpoints``."""
    return Path(os.environ.get(CHECKPOINT_DIR_ENV) or "checkpoints")


def attempt() -> int:
    """The attempt of this run: ``$DATAWORKS_ATTEMPT`` (1, then one more per restart), default 1."""
    raw = os.environ.get(ATTEMPT_ENV, "").strip() or "1"
    if not (raw.isascii() and raw.isdigit()) or int(raw) < 1:
        raise ValueError(f"{ATTEMPT_ENV} must be a whole number from 1, got {raw!r}")
    return int(raw)


def save(
    directory: str | os.PathLike[str],
    epoch: int,
    step: int,
    payload: Payload,
    *,
    metadata: dict[str, Any] | None = None,
    keep_last: int = 3,
    now: float | None = None,
) -> Checkpoint:
    """Write a checkpoint atomically and keep the newest ``keep_last`` valid ones.

    ``payload`` is bytes, or a callable that writes to the binary file object it
    is given (``lambda f: torch.save(state, f)``). ``metadata`` is a small
    JSON-serializable dict (loss, ...). Saving the same epoch and step again
    replaces that checkpoint, which is invalid from the payload's rename until
    the new manifest lands (a failing payload writer leaves it intact).
    Older checkpoints beyond ``keep_last``, and half-written ones older than the
    newest valid one, are removed; the checkpoint just written never is.
    """
    if epoch < 0 or step < 0:
        raise ValueError(f"epoch and step must not be negative, got epoch={epoch} step={step}")
    if keep_last < 1:
        raise ValueError(f"keep_last must be at least 1, got {keep_last}")
    meta = dict(metadata or {})
    json.dumps(meta, allow_nan=False)  # fail before touching the disk
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    path = root / f"ckpt-{epoch:06d}-{step:09d}"
    created = not path.exists()
    path.mkdir(exist_ok=True)
    _fsync_dir(root)
    try:
        tmp, size, digest = _write_temp(path, PAYLOAD, payload)
    except BaseException:
        if created:
            with contextlib.suppress(OSError):
                path.rmdir()  # only if empty: never a checkpoint another save completed
        raise
    with contextlib.suppress(FileNotFoundError):
        (path / MANIFEST).unlink()  # a re-save: invalid from here until its new manifest lands
    _commit(tmp, path / PAYLOAD)
    stamp = time.time() if now is None else float(now)
    manifest = {"epoch": epoch, "step": step, "time": stamp, "size": size, "sha256": digest, "metadata": meta}
    tmp, _, _ = _write_temp(path, MANIFEST, json.dumps(manifest, sort_keys=True, allow_nan=False).encode())
    _commit(tmp, path / MANIFEST)
    _retain(root, path, keep_last)
    return Checkpoint(path=path, epoch=epoch, step=step, time=stamp, metadata=meta)


def latest(directory: str | os.PathLike[str]) -> Checkpoint | None:
    """The newest valid checkpoint (by epoch, then step), or None; half-written ones are skipped."""
    for path in _candidates(Path(directory)):
        found = _load(path)
        if found is not None:
            return found
    return None


def on_sigterm(save_fn: Callable[[], object]) -> Callable[[], None]:
    """Install a SIGTERM handler that calls ``save_fn`` once, then exits with status 143 (128 + 15).

    A suspended, preempted or evicted pod gets SIGTERM, then SIGKILL after its
    grace period (30s by default): ``save_fn`` must be quick, saving only state
    already in memory. If it raises, the error goes to stderr and the exit is
    still 143; another SIGTERM during the save is ignored. The exit raises
    ``SystemExit`` in the main thread, so ``finally`` blocks run; the status is
    143 even when one of them raises in turn. Call from the main thread; returns
    a function that restores the previous handler.
    """
    saving = False

    def handler(signum: int, frame: FrameType | None) -> None:
        nonlocal saving
        if saving:
            return
        saving = True
        try:
            save_fn()
        except Exception:
            traceback.print_exc()
        raise SystemExit(SIGTERM_EXIT)

    # SystemExit runs the `finally` blocks, but one of them can replace it with its own error
    # (torch.save's zip writer does when interrupted mid-write, and the status would be 1, a
    # failure). Registered now, so that it runs after the exit handlers registered later: once
    # stopped by SIGTERM, the status is 143 however the interpreter ends.
    def exit_if_stopped() -> None:
        if saving:
            _exit_sigterm()

    atexit.register(exit_if_stopped)
    previous = signal.signal(signal.SIGTERM, handler)

    def restore() -> None:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)
        if not saving:
            atexit.unregister(exit_if_stopped)

    return restore


def _exit_sigterm() -> None:
    """The last exit handler of a process stopped by SIGTERM: flush, then exit 143."""
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(SIGTERM_EXIT)


@contextlib.contextmanager
def save_on_sigterm(save_fn: Callable[[], object]) -> Iterator[None]:
    """``on_sigterm`` for the duration of a ``with`` block; the previous handler is restored on exit."""
    restore = on_sigterm(save_fn)
    try:
        yield
    finally:
        restore()


def _write_temp(directory: Path, name: str, content: Payload) -> tuple[Path, int, str]:
    """Write to a temporary file in ``directory`` and fsync it: its path, size and sha256."""
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            if isinstance(content, bytes | bytearray | memoryview):
                f.write(content)
            else:
                content(f)
            f.flush()
            os.fsync(f.fileno())
        return (Path(tmp), *_measure(Path(tmp)))
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _commit(tmp: Path, target: Path) -> None:
    """Rename a temporary file into place, durably."""
    os.replace(tmp, target)
    _fsync_dir(target.parent)


def _measure(path: Path) -> tuple[int, str]:
    sha, size = hashlib.sha256(), 0
    with path.open("rb") as f:
        while chunk := f.read(_CHUNK):
            sha.update(chunk)
            size += len(chunk)
    return size, sha.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _position(path: Path) -> tuple[int, int] | None:
    match = _NAME.fullmatch(path.name)
    return (int(match[1]), int(match[2])) if match and path.is_dir() else None


def _candidates(root: Path) -> list[Path]:
    """Checkpoint directories, valid or not, newest first."""
    if not root.is_dir():
        return []
    found = [(pos, p) for p in root.iterdir() if (pos := _position(p)) is not None]
    return [p for _, p in sorted(found, reverse=True)]


def _load(path: Path) -> Checkpoint | None:
    """The checkpoint in ``path`` if its manifest is whole and matches its payload, else None."""
    payload, position = path / PAYLOAD, _position(path)
    try:
        manifest = json.loads((path / MANIFEST).read_text())
        if not isinstance(manifest, dict) or position is None:
            return None
        keys = ("epoch", "step", "time", "size", "sha256", "metadata")
        epoch, step, stamp, size, digest, meta = (manifest.get(k) for k in keys)
        if (epoch, step) != position or not isinstance(stamp, int | float) or not isinstance(meta, dict):
            return None
        if size != payload.stat().st_size or (size, digest) != _measure(payload):
            return None
    except (OSError, ValueError):
        return None
    return Checkpoint(path=path, epoch=position[0], step=position[1], time=float(stamp), metadata=meta)


def _retain(root: Path, written: Path, keep_last: int) -> None:
    """Remove what is older than the newest ``keep_last`` valid checkpoints, and half-written leftovers."""
    kept = 0
    for path in _candidates(root):
        if path == written:
            kept += 1
            continue
        if kept < keep_last:  # beyond retention, valid or not, it goes unhashed
            if _load(path) is not None:
                kept += 1
                continue
            if kept == 0:
                continue  # newer than every valid checkpoint: maybe a save in progress, leave it
        shutil.rmtree(path, ignore_errors=True)
