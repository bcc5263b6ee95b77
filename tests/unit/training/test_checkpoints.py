"""Table-driven tests of the training helpers on real files: atomic checkpoints, SIGTERM saves, progress."""

from __future__ import annotations

import hashlib
import json
import signal
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from dataworks import training
from dataworks.training import (
    Checkpoint,
    attempt,
    checkpoint_dir,
    latest,
    parse_progress,
    report,
    save,
    save_on_sigterm,
)


def names(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def temp_files(root: Path) -> list[Path]:
    return sorted(root.rglob("*.tmp"))


def position(found: Checkpoint | None) -> tuple[int, int] | None:
    return None if found is None else (found.epoch, found.step)


def write_with(data: bytes) -> Callable[[BinaryIO], None]:
    def write(f: BinaryIO) -> None:
        for i in range(0, len(data), 3):
            f.write(data[i : i + 3])

    return write


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        (b"weights", b"weights"),
        (b"", b""),
        (write_with(b"streamed state"), b"streamed state"),
        (write_with(bytes(range(256)) * 4), bytes(range(256)) * 4),
    ],
    ids=["bytes", "empty", "callable", "callable-binary"],
)
def test_round_trip(tmp_path: Path, payload: Any, expected: bytes) -> None:
    saved = save(tmp_path / "ckpts", 2, 40, payload, metadata={"loss": 0.25}, now=1000)
    found = latest(tmp_path / "ckpts")
    assert found == saved
    assert found == Checkpoint(tmp_path / "ckpts" / "ckpt-000002-000000040", 2, 40, 1000.0, {"loss": 0.25})
    assert found.read() == expected
    with found.open() as f:
        assert f.read() == expected
    manifest = json.loads((found.path / "manifest.json").read_text())
    assert manifest["size"] == len(expected)
    assert manifest["sha256"] == hashlib.sha256(expected).hexdigest()
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize(
    ("saves", "newest"),
    [
        ([], None),
        ([(0, 0)], (0, 0)),
        ([(1, 5), (2, 1), (1, 9)], (2, 1)),  # by epoch first
        ([(3, 10), (3, 9), (3, 100)], (3, 100)),  # then by step, as numbers
        ([(999_999, 1), (1_000_000, 0)], (1_000_000, 0)),  # wider than the padding
    ],
    ids=["none", "one", "epoch-first", "then-step", "beyond-padding"],
)
def test_latest_picks_the_newest(tmp_path: Path, saves: list[tuple[int, int]], newest: Any) -> None:
    for epoch, step in saves:
        save(tmp_path, epoch, step, f"{epoch}/{step}".encode(), keep_last=10)
    assert position(latest(tmp_path)) == newest


def test_latest_of_a_missing_directory_is_none(tmp_path: Path) -> None:
    assert latest(tmp_path / "absent") is None


def drop_manifest(path: Path) -> None:
    (path / "manifest.json").unlink()


def flip_a_byte(path: Path) -> None:
    data = bytearray((path / "payload").read_bytes())
    data[0] ^= 0xFF
    (path / "payload").write_bytes(bytes(data))  # same size, other sha256


def truncate(path: Path) -> None:
    (path / "payload").write_bytes(b"new")


def edit_manifest(**changes: Any) -> Callable[[Path], None]:
    def edit(path: Path) -> None:
        manifest = json.loads((path / "manifest.json").read_text())
        manifest.update(changes)
        (path / "manifest.json").write_text(json.dumps(manifest))

    return edit


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(drop_manifest, id="no-manifest"),
        pytest.param(flip_a_byte, id="sha-mismatch"),
        pytest.param(truncate, id="size-mismatch"),
        pytest.param(edit_manifest(sha256="0" * 64), id="manifest-sha-mismatch"),
        pytest.param(edit_manifest(size=1), id="manifest-size-mismatch"),
        pytest.param(edit_manifest(step=7), id="manifest-not-its-directory"),
        pytest.param(edit_manifest(time="yesterday"), id="bad-time"),
        pytest.param(edit_manifest(metadata=None), id="bad-metadata"),
        pytest.param(lambda p: (p / "manifest.json").write_text('{"epoch": 2, "st'), id="torn-manifest"),
        pytest.param(lambda p: (p / "manifest.json").write_text("[]"), id="manifest-not-an-object"),
        pytest.param(lambda p: (p / "payload").unlink(), id="no-payload"),
    ],
)
def test_an_invalid_checkpoint_is_skipped(tmp_path: Path, damage: Callable[[Path], None]) -> None:
    previous = save(tmp_path, 1, 100, b"previous payload")
    damaged = save(tmp_path, 2, 200, b"the newest payload")
    damage(damaged.path)
    assert latest(tmp_path) == previous


@pytest.mark.parametrize(
    ("keep_last", "left"),
    [
        (1, ["ckpt-000004-000000000"]),
        (2, ["ckpt-000003-000000000", "ckpt-000004-000000000"]),
        (3, ["ckpt-000002-000000000", "ckpt-000003-000000000", "ckpt-000004-000000000"]),
        (9, [f"ckpt-00000{e}-000000000" for e in range(5)]),
    ],
    ids=["one", "two", "three", "more-than-saved"],
)
def test_keep_last(tmp_path: Path, keep_last: int, left: list[str]) -> None:
    for epoch in range(5):
        save(tmp_path, epoch, 0, b"x" * epoch, keep_last=keep_last)
    assert names(tmp_path) == left


def test_the_checkpoint_just_written_is_kept_even_when_older(tmp_path: Path) -> None:
    for epoch in (5, 6, 7):
        save(tmp_path, epoch, 0, b"x", keep_last=2)
    written = save(tmp_path, 1, 0, b"restarted from scratch", keep_last=2)
    assert names(tmp_path) == ["ckpt-000001-000000000", "ckpt-000006-000000000", "ckpt-000007-000000000"]
    assert written.read() == b"restarted from scratch"


def half_written(root: Path, epoch: int, step: int) -> Path:
    """What a save killed after its payload and before its manifest leaves behind."""
    path = root / f"ckpt-{epoch:06d}-{step:09d}"
    path.mkdir(parents=True)
    (path / "payload").write_bytes(b"complete payload")
    (path / ".manifest.json.abc123.tmp").write_bytes(b'{"epoch"')
    return path


def test_a_save_killed_before_its_manifest_leaves_the_previous_checkpoint(tmp_path: Path) -> None:
    previous = save(tmp_path, 1, 0, b"previous")
    half_written(tmp_path, 2, 0)
    assert latest(tmp_path) == previous
    # The next save removes the leftover, which is older than the newest valid checkpoint.
    save(tmp_path, 3, 0, b"next")
    assert names(tmp_path) == ["ckpt-000001-000000000", "ckpt-000003-000000000"]
    assert temp_files(tmp_path) == []


def test_a_half_written_checkpoint_newer_than_any_valid_one_is_left_alone(tmp_path: Path) -> None:
    leftover = half_written(tmp_path, 9, 0)
    save(tmp_path, 3, 0, b"x", keep_last=1)
    assert leftover.exists()
    assert position(latest(tmp_path)) == (3, 0)


def failing_writer(f: BinaryIO) -> None:
    f.write(b"half of the state")
    raise RuntimeError("out of memory while serializing")


@pytest.mark.parametrize(
    ("epoch", "step"),
    [(2, 0), (1, 0)],
    ids=["new-position", "same-position-as-previous"],
)
def test_a_payload_writer_that_raises_leaves_no_trace(tmp_path: Path, epoch: int, step: int) -> None:
    previous = save(tmp_path, 1, 0, b"previous")
    with pytest.raises(RuntimeError, match="out of memory"):
        save(tmp_path, epoch, step, failing_writer)
    assert temp_files(tmp_path) == []
    assert latest(tmp_path) == previous
    assert previous.read() == b"previous"
    assert names(tmp_path) == ["ckpt-000001-000000000"]


def test_saving_the_same_position_again_replaces_it(tmp_path: Path) -> None:
    save(tmp_path, 1, 0, b"first", metadata={"loss": 2.0})
    again = save(tmp_path, 1, 0, b"second", metadata={"loss": 1.0})
    assert latest(tmp_path) == again
    assert again.read() == b"second"
    assert names(tmp_path) == ["ckpt-000001-000000000"]


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"epoch": -1}, ValueError),
        ({"step": -1}, ValueError),
        ({"keep_last": 0}, ValueError),
        ({"metadata": {"loss": float("nan")}}, ValueError),
        ({"metadata": {"model": object()}}, TypeError),
    ],
    ids=["negative-epoch", "negative-step", "keep-none", "nan-metadata", "unserializable-metadata"],
)
def test_bad_arguments_are_refused_before_anything_is_written(
    tmp_path: Path, kwargs: dict[str, Any], error: type[Exception]
) -> None:
    args: dict[str, Any] = {"epoch": 1, "step": 0, "payload": b"x", **kwargs}
    with pytest.raises(error):
        save(tmp_path / "ckpts", **args)
    assert not (tmp_path / "ckpts").exists()


@pytest.mark.parametrize(
    ("env", "directory", "number"),
    [
        ({}, Path("checkpoints"), 1),
        ({"DATAWORKS_CHECKPOINT_DIR": "", "DATAWORKS_ATTEMPT": ""}, Path("checkpoints"), 1),
        (
            {"DATAWORKS_CHECKPOINT_DIR": "/checkpoints/run", "DATAWORKS_ATTEMPT": "3"},
            Path("/checkpoints/run"),
            3,
        ),
    ],
    ids=["unset", "empty", "set"],
)
def test_environment(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], directory: Path, number: int
) -> None:
    monkeypatch.delenv("DATAWORKS_CHECKPOINT_DIR", raising=False)
    monkeypatch.delenv("DATAWORKS_ATTEMPT", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert checkpoint_dir() == directory
    assert attempt() == number


@pytest.mark.parametrize("value", ["two", "1.5", "0", "-1"])
def test_a_bad_attempt_is_named(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("DATAWORKS_ATTEMPT", value)
    with pytest.raises(ValueError, match="DATAWORKS_ATTEMPT"):
        attempt()


def test_save_on_sigterm_restores_the_previous_handler() -> None:
    before = signal.getsignal(signal.SIGTERM)
    with save_on_sigterm(lambda: None):
        assert signal.getsignal(signal.SIGTERM) is not before
    assert signal.getsignal(signal.SIGTERM) is before


TRAINER = """
import sys, time
from dataworks.training import save, save_on_sigterm

def save_now():
    {save}

with save_on_sigterm(save_now):
    print("ready", flush=True)
    time.sleep(60)
sys.exit(0)
"""


@pytest.mark.parametrize(
    ("save_code", "saved"),
    [
        ("save(sys.argv[1], 4, 123, b'state at SIGTERM', metadata={'loss': 0.5})", True),
        ("raise RuntimeError('disk full')", False),
    ],
    ids=["saves", "save-fails"],
)
def test_sigterm_saves_then_exits_143(tmp_path: Path, save_code: str, saved: bool) -> None:
    script = textwrap.dedent(TRAINER).format(save=save_code)
    with subprocess.Popen(
        [sys.executable, "-c", script, str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as proc:
        assert proc.stdout is not None
        assert proc.stdout.readline() == "ready\n"
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 143
    found = latest(tmp_path)
    if saved:
        assert found is not None
        assert (found.epoch, found.step, found.metadata) == (4, 123, {"loss": 0.5})
        assert found.read() == b"state at SIGTERM"
    else:
        assert found is None
        assert "RuntimeError: disk full" in stderr


@pytest.mark.parametrize(
    ("args", "metrics", "line", "parsed"),
    [
        (
            (3, 10, None),
            {},
            'DATAWORKS_PROGRESS {"epoch":3,"metrics":{},"totalEpochs":10}',
            {"epoch": 3, "totalEpochs": 10, "metrics": {}},
        ),
        (
            (3, 10, 1500),
            {"loss": 0.25, "accuracy": 1},
            'DATAWORKS_PROGRESS {"epoch":3,"metrics":{"accuracy":1.0,"loss":0.25},'
            '"step":1500,"totalEpochs":10}',
            {"epoch": 3, "totalEpochs": 10, "step": 1500, "metrics": {"accuracy": 1.0, "loss": 0.25}},
        ),
        (
            (1, 2, 0),
            {"loss": float("nan"), "lr": float("inf"), "throughput": 812.5},
            'DATAWORKS_PROGRESS {"epoch":1,"metrics":{"loss":null,"lr":null,"throughput":812.5},'
            '"step":0,"totalEpochs":2}',
            {"epoch": 1, "totalEpochs": 2, "step": 0, "metrics": {"throughput": 812.5}},
        ),
    ],
    ids=["no-metrics", "metrics-and-step", "non-finite-metrics"],
)
def test_report_prints_one_line_that_parses_back(
    capsys: pytest.CaptureFixture[str],
    args: tuple[int, int, int | None],
    metrics: dict[str, float],
    line: str,
    parsed: dict[str, Any],
) -> None:
    report(*args, **metrics)
    out = capsys.readouterr().out
    assert out == line + "\n"
    assert parse_progress(out) == parsed


@pytest.mark.parametrize(
    "line",
    [
        pytest.param("", id="empty"),
        pytest.param("epoch 3/10 loss=0.25", id="other-log-line"),
        pytest.param('DATAWORKS_PROGRESS{"epoch":1,"totalEpochs":2,"metrics":{}}', id="no-space"),
        pytest.param('INFO DATAWORKS_PROGRESS {"epoch":1,"totalEpochs":2,"metrics":{}}', id="not-at-start"),
        pytest.param("DATAWORKS_PROGRESS", id="marker-only"),
        pytest.param("DATAWORKS_PROGRESS ", id="marker-and-space"),
        pytest.param('DATAWORKS_PROGRESS {"epoch":1,"totalEpochs":2,"metrics":{}', id="torn-json"),
        pytest.param("DATAWORKS_PROGRESS [1, 2]", id="not-an-object"),
        pytest.param('DATAWORKS_PROGRESS {"totalEpochs":2,"metrics":{}}', id="no-epoch"),
        pytest.param('DATAWORKS_PROGRESS {"epoch":"1","totalEpochs":2,"metrics":{}}', id="epoch-string"),
        pytest.param('DATAWORKS_PROGRESS {"epoch":1.5,"totalEpochs":2,"metrics":{}}', id="epoch-float"),
        pytest.param('DATAWORKS_PROGRESS {"epoch":true,"totalEpochs":2,"metrics":{}}', id="epoch-bool"),
        pytest.param(
            'DATAWORKS_PROGRESS {"epoch":1,"totalEpochs":2,"step":"x","metrics":{}}', id="step-string"
        ),
        pytest.param('DATAWORKS_PROGRESS {"epoch":1,"totalEpochs":2}', id="no-metrics"),
        pytest.param('DATAWORKS_PROGRESS {"epoch":1,"totalEpochs":2,"metrics":[]}', id="metrics-list"),
        pytest.param(
            'DATAWORKS_PROGRESS {"epoch":1,"totalEpochs":2,"metrics":{"loss":"low"}}', id="metric-string"
        ),
        pytest.param(
            'DATAWORKS_PROGRESS {"epoch":1,"totalEpochs":2,"metrics":{"loss":NaN}}', id="metric-nan-token"
        ),
    ],
)
def test_parse_progress_ignores_other_and_malformed_lines(line: str) -> None:
    assert parse_progress(line) is None


def test_a_progress_line_can_name_the_latest_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    saved = training.save(tmp_path, 2, 10, b"state", now=1796040000.0)
    training.report(3, 4, checkpoint=saved, loss=0.5)
    (line,) = capsys.readouterr().out.splitlines()
    parsed = training.parse_progress(line)
    assert parsed is not None
    assert parsed["checkpoint"] == {"epoch": 2, "step": 10, "path": str(saved.path), "time": 1796040000.0}
    broken = line.replace('"step":10', '"step":"ten"')
    assert "checkpoint" not in (training.parse_progress(broken) or {})
