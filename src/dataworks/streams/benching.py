"""Runs a stream benchmark scenario on this machine (edge layer): `dataworks bench stream`.

A broker (benchbrokers.py: a Redis, started here unless the scenario names one, or a topic of
its own on the scenario's Kafka), the generator paced in real time, and a group of
`dataworks consume` processes that commit their reports before they acknowledge: a fixed count,
or the consumers of a StreamingJob run here by its own controller (the CLI's benchjobs.py,
given as `jobs`).
Once a second it samples the broker (produced, acknowledged, pending, lag), the consumers'
own per-second figures (messages, busy time, end-to-end latency), and every process's CPU
and memory (psutil), and injects the scenario's faults on time. When the producer is done it
waits for the group to drain, stops the consumers, and checks every sequence number the
generator produced (regenerated from the same seed, not read back) against the consumers'
reports: lost (must be 0), duplicated and out of order.
"""

from __future__ import annotations

import itertools
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import psutil
import yaml

from dataworks.api.benchscenario import Fault, Scenario
from dataworks.core.streams import chaos, latency, sequences
from dataworks.core.streams.generating import Generator, symbol_name
from dataworks.streams.benchbrokers import GROUP, Broker, open_broker

CLI = [sys.executable, "-m", "dataworks.cli.main"]


class ConsumerJob(Protocol):
    """A StreamingJob whose consumers the benchmark measures: run here (cli/benchjobs.py), or
    on a cluster (cli/benchcluster.py), where the consumers commit their reports to the broker
    and publish their per-second figures there (`reports_in_broker`)."""

    reports_in_broker: bool

    def start(self) -> None: ...
    def stop(self) -> None: ...
    def abort(self) -> None: ...  # after a failure: gone, whatever the state
    def live(self) -> list[str]: ...
    def kill(self, name: str) -> None: ...
    def processes(self) -> dict[str, subprocess.Popen[bytes]]: ...  # those on this machine
    @property
    def desired(self) -> int | None: ...


# (spec, source, workdir, commit_every) -> the job, not started
JobFactory = Callable[[dict[str, Any], dict[str, Any], Path, float], ConsumerJob]
# (consumer name, pid) -> put the process under consumers.resources' limits; what undoes it
# once the process is gone (the CLI gives local/cgroups.py's)
Confine = Callable[[str, int], Callable[[], None] | None]


@dataclass
class Run:
    scenario: Scenario
    workdir: Path
    broker: Broker
    producer: subprocess.Popen[bytes] | None = None
    consumers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    samples: list[dict[str, Any]] = field(default_factory=list)
    faults_done: list[dict[str, Any]] = field(default_factory=list)
    started: float = 0.0
    stats_read: dict[str, int] = field(default_factory=dict)  # lines of each stats file consumed
    stats_seen: dict[str, Any] = field(default_factory=dict)  # a cluster consumer's last row, by its time
    cpu_last: dict[int, tuple[float, float]] = field(default_factory=dict)
    later: list[tuple[float, Callable[[], Any]]] = field(default_factory=list)  # (due, action)
    job: ConsumerJob | None = None  # a StreamingJob's consumers instead of a fixed group
    job_factory: JobFactory | None = None
    confine: Confine | None = None
    undo: list[Callable[[], None]] = field(default_factory=list)  # each consumer's confinement
    own_resources: dict[str, Any] = field(default_factory=dict)  # a cluster's consumers' own figures
    ceiling: float | None = None  # what the broker takes from its own tool, measured at the start

    def start_consumer(self) -> None:
        name = f"c{len(self.consumers) + 1}"
        c = self.scenario.consumers
        cmd = [*CLI, "consume", *self.broker.consume_args(), "--group", GROUP, "--consumer", name]
        cmd += [
            "--batch",
            str(c.batch),
            "--block-ms",
            str(c.block_ms),
            "--claim-idle-ms",
            str(c.claim_idle_ms),
        ]
        cmd += ["--commit-every", str(c.commit_every), "--report", str(self.workdir / f"{name}.json")]
        cmd += ["--stats", str(self.workdir / f"{name}.stats")]
        self.consumers[name] = subprocess.Popen(
            cmd, stdout=subprocess.DEVNULL, stderr=self._log(name), env=children_env()
        )
        if self.confine is not None:
            undo = self.confine(name, self.consumers[name].pid)
            if undo is not None:
                self.undo.append(undo)

    def _log(self, name: str) -> Any:
        return (self.workdir / f"{name}.log").open("wb")

    def live(self) -> list[str]:
        if self.job is not None:
            self.consumers.update(self.job.processes())  # every consumer it ran here, by pod name
            return self.job.live()
        return [n for n, p in self.consumers.items() if p.poll() is None]

    def inject(self, fault: Fault) -> None:
        """Start a fault now; its second half (a replacement, a resume, a restart) is scheduled,
        never slept through, so sampling goes on every second."""
        now = time.monotonic()
        record: dict[str, Any] = {"t": round(now - self.started, 2), "at": fault.at, "action": fault.action}
        if fault.action == "killConsumer" and self.live():
            victim = self.live()[0]
            record["consumer"] = victim
            if self.job is not None:  # its pod is restarted, or replaced, as a pod is
                self.job.kill(victim)
            else:
                self.consumers[victim].send_signal(signal.SIGKILL)
                self.later.append((now + 1.0, self.start_consumer))  # as a Deployment would replace it
        elif fault.action == "addConsumer":
            self.start_consumer()
        elif fault.action == "pauseProducer" and self.producer is not None:
            self.producer.send_signal(signal.SIGSTOP)
            producer = self.producer
            self.later.append((now + fault.seconds, lambda: producer.send_signal(signal.SIGCONT)))
        elif fault.action == "restartRedis":
            self.broker.restart(fault.seconds, self.later)
        self.faults_done.append(record)

    def run_due(self) -> None:
        now = time.monotonic()
        due = [(t, f) for t, f in self.later if t <= now]
        self.later = [(t, f) for t, f in self.later if t > now]
        for _, action in due:
            action()

    def sample(self) -> None:
        t = time.monotonic() - self.started
        row: dict[str, Any] = {"t": round(t, 2), "consumers": len(self.live())}
        if self.job is not None:
            row["desiredReplicas"] = self.job.desired
        row |= self.broker.reading(GROUP)
        row |= self._consumer_stats()
        row |= self._resources()
        if "consumers" in self.own_resources:  # a cluster's: from their own rows
            row["resources"]["consumers"] = self.own_resources.pop("consumers")
        self.samples.append(row)

    def _consumer_stats(self) -> dict[str, Any]:
        """The consumers' per-second figures published since the last sample."""
        processed, busy, p50, p99, p999, throttled = 0, 0.0, [], [], [], []
        rows = self._new_rows()
        if self.job is not None and self.job.reports_in_broker:
            self._own_resources(rows)
        for s in rows:
            processed += s["processed"]
            busy += s["busy"]
            if s.get("throttled") is not None:  # under a CPU limit
                throttled.append(s["throttled"])
            if s.get("p99") is not None:
                p50.append(s["p50"])
                p99.append(s["p99"])
                p999.append(s.get("p999", s["p99"]))
        out: dict[str, Any] = {"processed": processed, "busy": round(busy, 3)}
        if p99:  # across consumers, the worst: percentiles of parts do not combine
            out |= {"p50": max(p50), "p99": max(p99), "p999": max(p999)}
        if throttled:  # the most throttled consumer's share of CPU periods
            out["throttled"] = max(throttled)
        return out

    def _own_resources(self, rows: list[dict[str, Any]]) -> None:
        """On a cluster, psutil cannot reach the consumers' pods: their CPU seconds and memory
        come from the rows they publish (each its own `os.times()` and resident memory)."""
        with_cpu = [r for r in rows if r.get("cpuUser") is not None]
        if with_cpu:
            self.own_resources["consumers"] = {
                "user": round(sum(r["cpuUser"] for r in with_cpu), 3),
                "system": round(sum(r.get("cpuSystem") or 0.0 for r in with_cpu), 3),
                "rssMiB": round(sum(r.get("rss") or 0 for r in with_cpu) / 2**20, 1),
            }

    def _new_rows(self) -> list[dict[str, Any]]:
        """Here, every line each consumer process appended to its stats file. On a cluster, each
        consumer's latest row in the broker, once (a row published twice between two samples
        is missed: the summary's counts come from the reports, not from these)."""
        rows: list[dict[str, Any]] = []
        if self.job is not None and self.job.reports_in_broker:
            for consumer, row in self.broker.published(GROUP).items():
                if self.stats_seen.get(consumer) != row.get("t"):
                    self.stats_seen[consumer] = row.get("t")
                    rows.append(row)
            return rows
        for path in sorted(self.workdir.glob("*.stats")):  # every consumer process's, restarts too
            name = path.name
            lines = path.read_text().splitlines()
            rows += [json.loads(line) for line in lines[self.stats_read.get(name, 0) :]]
            self.stats_read[name] = len(lines)
        return rows

    def _resources(self) -> dict[str, Any]:
        roles: dict[str, list[subprocess.Popen[bytes] | None]] = {"producer": [self.producer]}
        if self.job is None or not self.job.reports_in_broker:  # a cluster's pods are out of reach
            roles["consumers"] = list(self.consumers.values())
        if started := self.broker.processes():
            roles["redis"] = started
        out: dict[str, Any] = {"resources": {}}
        for role, procs in roles.items():
            user = system = rss = 0.0
            for p in procs:
                if p is None or p.poll() is not None:
                    continue
                try:
                    ps = psutil.Process(p.pid)
                    times, mem = ps.cpu_times(), ps.memory_info()
                except psutil.Error:
                    continue
                last = self.cpu_last.get(p.pid, (times.user, times.system))
                user, system = user + times.user - last[0], system + times.system - last[1]
                self.cpu_last[p.pid] = (times.user, times.system)
                rss += mem.rss / 2**20
            out["resources"][role] = {
                "user": round(user, 3),
                "system": round(system, 3),
                "rssMiB": round(rss, 1),
            }
        lo = psutil.net_io_counters(pernic=True).get("lo")
        out["loopbackBytes"] = (lo.bytes_sent + lo.bytes_recv) if lo else 0
        return out


def run(
    scenario: Scenario,
    *,
    keep: Path | None = None,
    jobs: JobFactory | None = None,
    confine: Confine | None = None,
) -> dict[str, Any]:
    """Run the scenario; its result (summary, samples, faults, correctness), as JSON data.
    `keep`: copy the working directory (logs, reports, per-second stats) there. `jobs` runs a
    scenario's StreamingJob (the CLI gives the local runtime's); `confine` puts each consumer
    of a fixed group under `consumers.resources`."""
    if scenario.streaming_job is not None and jobs is None:
        raise ValueError(f"scenario {scenario.name} has a streamingJob, and no way to run one was given")
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{scenario.name}-"))
    r = Run(scenario, workdir, open_broker(scenario, workdir), job_factory=jobs, confine=confine)
    try:
        config = _start(r)
        _drive(r)
        r.live()
        if r.job is not None:
            r.job.stop()
        for p in r.consumers.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in r.consumers.values():
            p.wait(timeout=60)
        r.sample()
        return _result(r, config, producer_code=r.producer.returncode if r.producer else None)
    except BaseException:
        if r.job is not None:
            r.job.abort()
        raise
    finally:
        for proc in [r.producer, *r.consumers.values()]:
            if proc is not None and proc.poll() is None:
                proc.kill()
                proc.wait()
        for undo in r.undo:
            undo()
        r.broker.stop()
        if keep is not None:
            shutil.copytree(workdir, keep, dirs_exist_ok=True)
        shutil.rmtree(workdir, ignore_errors=True)


def _start(r: Run) -> Any:
    """The broker, the consumers, then the producer."""
    scenario = r.scenario
    r.broker.start()
    r.ceiling = r.broker.ceiling()  # before anything else runs, on the same machine and broker
    if scenario.streaming_job is not None and r.job_factory is not None:
        commit_every = scenario.consumers.commit_every
        r.job = r.job_factory(scenario.streaming_job, r.broker.source(GROUP), r.workdir, commit_every)
        r.job.start()
    else:
        for _ in range(scenario.consumers.count):
            r.start_consumer()
    config = scenario.generator_config()
    gen_file = r.workdir / "generator.yaml"
    gen_file.write_text(yaml.safe_dump(config.model_dump(mode="json", by_alias=True)))
    target = r.broker.target()
    r.started = time.monotonic()
    cmd = [*CLI, "generate", "-q", "--realtime", "--config", str(gen_file), "-o", target]
    r.producer = subprocess.Popen(
        cmd, stdout=subprocess.DEVNULL, stderr=r._log("producer"), env=children_env()
    )
    return config


def _drive(r: Run) -> None:
    """Sample every second and inject faults on time, until the producer is done and the group
    has drained (lag and pending 0), or `drainSeconds` after the producer stopped."""
    assert r.producer is not None
    faults = chaos.all_faults(r.scenario)
    next_sample = r.started + 1
    producer_done: float | None = None
    while True:
        now = time.monotonic()
        while faults and now - r.started >= faults[0].at:
            r.inject(faults.pop(0))
        r.run_due()
        if now >= next_sample:
            r.sample()
            next_sample += 1
        if r.producer.poll() is not None and not r.later:
            producer_done = producer_done or now
            last = r.samples[-1] if r.samples else {}
            drained = (
                last.get("lag") == 0
                and last.get("pending") == 0
                and last.get("t", 0) > producer_done - r.started
            )
            if drained or now - producer_done > r.scenario.drain_seconds:
                return
        time.sleep(0.05)


def _result(r: Run, config: Any, *, producer_code: int | None) -> dict[str, Any]:
    gen = Generator(config, only=set())  # the same stream, counted, never formatted
    for _ in gen.chunks():
        pass
    expected = {symbol_name(i): int(n) for i, n in enumerate(gen.sequence) if n}
    reports = [json.loads(p.read_text()) for p in sorted(r.workdir.glob("*.json"))]  # one per process
    if r.job is not None and r.job.reports_in_broker:
        reports += r.broker.reports(GROUP)
    check = sequences.check(reports, expected)
    produced = sum(expected.values())
    wall = r.samples[-1]["t"] if r.samples else 0.0
    latency = _merge_latency(reports)
    summary = {
        "producedMessages": produced,
        "processed": check["distinct"],
        "lost": check["lost"],
        "duplicated": check["duplicated"] + sum(rep["duplicates"] for rep in reports),
        "outOfOrder": sum(rep["outOfOrder"] for rep in reports),
        "errors": sum(rep["errors"] for rep in reports),
        "claimed": sum(rep["claimed"] for rep in reports),
        "reconnects": sum(rep.get("reconnects", 0) for rep in reports),
        "wallSeconds": wall,
        "throughput": round(check["distinct"] / wall) if wall else 0,
        "latencyMs": latency,
        "producerExit": producer_code,
        **_peaks(r.samples),
        "ceiling": round(r.ceiling) if r.ceiling else None,
        "ceilingTool": r.broker.ceiling_tool if r.ceiling else None,
    }
    return {
        "scenario": r.scenario.model_dump(mode="json", by_alias=True),
        "summary": summary,
        "samples": r.samples,
        "faults": r.faults_done,
        "consumers": [{k: v for k, v in rep.items() if k != "sequences"} for rep in reports],
    }


def _peaks(samples: list[dict[str, Any]]) -> dict[str, int]:
    """The most produced and acknowledged in one second, from the broker's counters."""
    out = {"peakProduced": 0, "peakAcknowledged": 0}
    for a, b in itertools.pairwise(samples):
        dt = b["t"] - a["t"]
        for key, name in (("produced", "peakProduced"), ("acked", "peakAcknowledged")):
            if dt > 0 and key in a and key in b:
                out[name] = max(out[name], round((b[key] - a[key]) / dt))
    return out


def _merge_latency(reports: list[dict[str, Any]]) -> dict[str, float]:
    """The run's percentiles, from the sum of the consumers' histograms."""
    return latency.percentiles_ms(latency.merge(rep.get("latencyHistogram") or {} for rep in reports))


def children_env() -> dict[str, str]:
    """The environment of the processes a run starts: they stop if this process is killed
    (`DATAWORKS_EXIT_WITH_PARENT`, cli/context.py; the name is repeated, as the streams layer
    does not import the CLI)."""
    return {**os.environ, "DATAWORKS_EXIT_WITH_PARENT": str(os.getpid())}
