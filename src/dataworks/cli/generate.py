"""`dataworks generate` (edge layer): seeded market data into Redis Streams or a file.

The configuration is a YAML file (api/generator.py) or flags for the simple cases; flags
override the file. The stream itself comes from core/streams/generating.py, so one seed and
configuration give the same lines whatever the speed. With `--processes N`, each worker sends
a share of the symbols that carries about 1/N of the messages (core/streams/generating.shares),
each symbol from one process, so every symbol keeps its order. A Rich progress line shows
the current rate next to the schedule's.
"""

from __future__ import annotations

import argparse
import bisect
import multiprocessing
import os
import queue
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from dataworks.cli.context import EXIT_FAILED, EXIT_OK, exit_with_parent, fail, need_streams

BATCH = 1000
SLICE_SECONDS = 0.002  # under --realtime, what one write may span
# Under --realtime, the schedule starts this long after the process is ready (time to make the
# first second's messages), or after the command starts with --processes (the workers' start).
FIRST_CHUNK_SECONDS = 0.25
PIECE = 1000  # lines a chunk crosses from its maker to the pacing process in
AHEAD = 128  # pieces the maker may be ahead: 128K lines, over a chunk at any rate one process sends
SPAWN_SECONDS = 2.0


def add_parser(sub: Any) -> None:
    p = sub.add_parser(
        "generate",
        help="generate seeded market data into a Redis stream or a JSON-lines file",
        description="Generate seeded market data. The same seed and configuration give the same bytes.",
    )
    p.add_argument("--config", "-c", help="generator configuration (YAML; see docs/streaming-bench.md)")
    p.add_argument("--seed", type=int, help="the one source of randomness (default 0)")
    p.add_argument("--count", type=int, help="stop after this many messages")
    p.add_argument("--duration", type=float, help="or stop at this many schedule seconds")
    p.add_argument("--rate", type=float, help="base rate, messages per schedule second (default 10000)")
    p.add_argument(
        "--output",
        "-o",
        required=True,
        help="redis://HOST:PORT[/DB]?stream=NAME, a file path, or - for stdout",
    )
    p.add_argument(
        "--realtime",
        action="store_true",
        help="pace to the schedule (timeMultiplier schedule seconds per wall second) instead of full "
        "speed; timestamps are then when each message is due on the wall clock",
    )
    p.add_argument("--processes", "-p", type=int, default=1, help="worker processes (broker outputs only)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress line")
    p.set_defaults(fn=cmd_generate)


def load_config(args: argparse.Namespace) -> Any:
    import yaml
    from pydantic import ValidationError

    from dataworks.api.generator import GeneratorConfig

    raw: dict[str, Any] = {}
    if args.config:
        try:
            raw = yaml.safe_load(Path(args.config).read_text()) or {}
        except OSError as e:
            fail(f"config {args.config}: {e.strerror}")
        except yaml.YAMLError as e:
            fail(f"config {args.config}: not YAML: {e}")
        if not isinstance(raw, dict):
            fail(f"config {args.config}: expected a mapping of settings, got {type(raw).__name__}")
    for flag, key in (
        ("seed", "seed"),
        ("count", "count"),
        ("duration", "durationSeconds"),
        ("rate", "rate"),
    ):
        if getattr(args, flag) is not None:
            raw[key] = getattr(args, flag)
    if "count" in raw and args.duration is not None and args.count is None:
        raw.pop("count")  # --duration on the command line replaces the file's count
    try:
        return GeneratorConfig.model_validate(raw)
    except ValidationError as e:
        where = args.config or "flags"
        first = e.errors()[0]
        field = ".".join(str(p) for p in first["loc"]) or "(top level)"
        msg = first["msg"].removeprefix("Value error, ")
        more = f" (and {e.error_count() - 1} more)" if e.error_count() > 1 else ""
        fail(f"generator config ({where}): field {field}: {msg}{more}")


def cmd_generate(args: argparse.Namespace) -> int:
    need_streams("generate")
    exit_with_parent()
    config = load_config(args)
    if args.processes < 1:
        fail("--processes must be at least 1")
    broker = "://" in args.output
    if args.processes > 1 and not broker:
        fail("--processes > 1 needs a broker output (redis://...): one file is written by one process")
    from dataworks.streams import sinks

    try:
        sinks.check(args.output)  # before any worker starts
    except sinks.SinkError as e:
        fail(str(e))
    ctx = multiprocessing.get_context("spawn")
    sent = ctx.Value("q", 0)
    started = time.monotonic()
    # Schedule time 0 on the wall clock: a moment ahead, so the first message is not late
    # already (the workers' start-up; a process's own start-up is set in _run, when ready).
    realtime = time.time() + SPAWN_SECONDS if args.realtime else None
    if args.processes == 1:
        code = _run(config, args.output, None, realtime, sent, progress=not args.quiet, ready=True)
    else:
        workers = [
            ctx.Process(target=_worker, args=(config, args.output, (w, args.processes), realtime, sent))
            for w in range(args.processes)
        ]
        for w in workers:
            w.start()
        _watch(workers, sent, config, quiet=args.quiet)
        code = EXIT_OK if all(w.exitcode == 0 for w in workers) else EXIT_FAILED
    elapsed = time.monotonic() - started
    if not args.quiet:
        print(
            f"{sent.value} messages in {elapsed:.2f} s ({sent.value / elapsed:,.0f}/s) to {args.output}",
            file=sys.stderr,
        )
    return code


def _worker(config: Any, output: str, part: tuple[int, int], realtime: float | None, sent: Any) -> None:
    raise SystemExit(_run(config, output, part, realtime, sent, progress=False))


def _run(
    config: Any,
    output: str,
    part: tuple[int, int] | None,
    realtime: float | None,
    sent: Any,
    *,
    progress: bool,
    ready: bool = False,
) -> int:
    """Write this process's share; `ready`: the schedule starts FIRST_CHUNK_SECONDS after this
    process is ready to send (the broker connected), not at `realtime`."""
    from dataworks.core.streams.generating import Generator, shares
    from dataworks.streams import sinks

    only = None if part is None else shares(config.symbols.count, part[1])[part[0]]
    sink = sinks.open_sink(output)
    if realtime is not None and ready:
        realtime = time.time() + FIRST_CHUNK_SECONDS
    gen = Generator(config, only=only, realtime_start=realtime)
    bar = _Progress(config, gen) if progress else None
    chunks = gen.chunks() if realtime is None else _ahead(gen)
    try:
        for chunk in chunks:
            for lo, hi in _slices(chunk, realtime is not None, config.time_multiplier):
                if realtime is not None:  # a slice leaves when its last message is due
                    _pace(realtime, chunk.arrivals[hi - 1] / config.time_multiplier)
                sink.write(chunk.data[lo:hi], chunk.symbols[lo:hi])
                with sent.get_lock():
                    sent.value += hi - lo
            if bar is not None:
                bar.update(sent.value, chunk.until)
    except sinks.SinkError as e:
        print(f"error: {e}", file=sys.stderr)
        getattr(sink, "abort", sink.close)()
        return EXIT_FAILED
    except KeyboardInterrupt:
        getattr(sink, "abort", sink.close)()  # a stopped run leaves no half-written file
        raise
    finally:
        if bar is not None:
            bar.stop()
    sink.close()
    return EXIT_OK


def _ahead(gen: Any) -> Iterator[Any]:
    """The chunks, made by a child process while this one paces the one before out, and handed
    over in pieces of PIECE lines. Made in this process, even on a thread, a chunk (about 60 ms
    of CPU at 20K messages/s, much of it holding the GIL) held back the messages due meanwhile:
    a latency every consumer measured and none caused. The queue holds at most AHEAD pieces,
    more than a chunk at any rate this machine reaches, so the child stays a second ahead."""
    ctx = multiprocessing.get_context("fork")  # the generator as it is, no pickling of its state
    pieces: Any = ctx.Queue(maxsize=AHEAD)
    child = ctx.Process(target=_make, args=(gen, pieces, os.getpid()), daemon=True)
    child.start()
    try:
        while (item := pieces.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        child.terminate()
        child.join()


def _make(gen: Any, pieces: Any, parent: int) -> None:
    from dataworks.core.streams.generating import Chunk

    def put(item: Any) -> None:
        while True:
            try:
                pieces.put(item, timeout=1.0)
                return
            except queue.Full:
                if os.getppid() != parent:  # the pacing process is gone (killed): so is this one
                    os._exit(0)

    try:
        for chunk in gen.chunks():
            for k in range(0, len(chunk.data), PIECE):
                put(
                    Chunk(
                        chunk.data[k : k + PIECE], chunk.symbols[k : k + PIECE], chunk.arrivals[k : k + PIECE]
                    )
                )
    except BaseException as e:  # raised in the pacing process, where it is handled
        put(e)
    put(None)
    pieces.close()
    pieces.join_thread()  # everything reaches the pipe before this process exits


def _slices(chunk: Any, realtime: bool, multiplier: float) -> list[tuple[int, int]]:
    """Index ranges to send together: BATCH lines at full speed; under --realtime, also no
    more than SLICE_SECONDS of wall time, so no message waits long for its batch."""
    n = len(chunk.data)
    if not realtime:
        return [(k, min(k + BATCH, n)) for k in range(0, n, BATCH)]
    out, lo = [], 0
    arrivals = chunk.arrivals
    while lo < n:
        limit = arrivals[lo] + SLICE_SECONDS * multiplier
        hi = bisect.bisect_right(arrivals, limit, lo, min(lo + BATCH, n))
        hi = max(hi, lo + 1)
        out.append((lo, hi))
        lo = hi
    return out


def _pace(wall0: float, due: float) -> None:
    ahead = wall0 + due - time.time()
    if ahead > 0:
        time.sleep(ahead)


def _watch(workers: list[Any], sent: Any, config: Any, *, quiet: bool) -> None:
    last = (time.monotonic(), 0)
    while any(w.is_alive() for w in workers):
        time.sleep(0.5)
        now, n = time.monotonic(), sent.value
        if not quiet:
            print(f"\r{n:>12,} sent  {(n - last[1]) / (now - last[0]):>10,.0f}/s", end="", file=sys.stderr)
        last = (now, n)
    for w in workers:
        w.join()
    if not quiet:
        print(file=sys.stderr)


class _Progress:
    """One Rich line: messages sent, the current rate, and the schedule's rate at this point."""

    def __init__(self, config: Any, gen: Any) -> None:
        from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

        self.gen, self.config = gen, config
        self.p = Progress(
            TextColumn("{task.completed:>12,.0f} sent"),
            BarColumn(),
            TextColumn("{task.fields[rate]:>10,.0f}/s now, schedule {task.fields[target]:,.0f}/s"),
            TimeElapsedColumn(),
            transient=True,
        )
        self.task = self.p.add_task("generate", total=config.count, rate=0.0, target=0.0)
        self.last = (time.monotonic(), 0)
        self.p.start()

    def update(self, n: int, arrival: float) -> None:
        now = time.monotonic()
        if now - self.last[0] < 0.25:
            return
        rate = (n - self.last[1]) / (now - self.last[0])
        target = self.gen.schedule.rate(int(arrival))
        self.p.update(self.task, completed=n, rate=rate, target=target)
        self.last = (now, n)

    def stop(self) -> None:
        self.p.stop()
