"""`dataworks bench stream` runs the shipped chaos scenario on a real Redis it starts, loses
nothing, and writes a report whose plots load in headless Chromium."""

from __future__ import annotations

import json
import re
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from dataworks.cli import bench
from tests.local import services

ROOT = Path(__file__).resolve().parents[2]
SCENARIOS = sorted((ROOT / "benchmarks" / "scenarios").glob("*.yaml"))
CLI = [sys.executable, "-m", "dataworks.cli.main"]
CHROMIUM = [
    "chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip


def test_the_chaos_scenario_loses_nothing_and_its_report_shows_four_plots(tmp_path: Path) -> None:
    out, page = tmp_path / "chaos.json", tmp_path / "chaos.html"
    scenario = ROOT / "benchmarks" / "scenarios" / "chaos.yaml"
    cmd = [*CLI, "bench", "stream", str(scenario), "--json", str(out), "--html", str(page)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    s = result["summary"]
    assert s["lost"] == 0
    assert s["processed"] == s["producedMessages"]
    assert s["claimed"] > 0  # the killed consumers' pending messages were taken over
    assert s["reconnects"] > 0  # the consumers rode out the Redis restart
    assert s["duplicated"] > 0  # configured ones at least; at-least-once adds more
    # The ceiling, redis-benchmark's XADD into the same Redis at the start, is far above the
    # scenario's 10K/s; the peaks are the broker's own counters, a second apart.
    assert s["ceiling"] > s["peakProduced"] > 5_000
    assert 0 < s["peakAcknowledged"] <= s["ceiling"]
    assert "ceiling: the broker's own tool, messages/s, same run" in done.stdout
    assert s["ceilingTool"] == "redis-benchmark XADD, pipelined 64"
    assert [f["action"] for f in result["faults"]] == [
        "killConsumer",
        "restartRedis",
        "killConsumer",
        "pauseProducer",
    ]
    assert len(result["samples"]) >= 40
    assert any(sample.get("error") == "ConnectionError" for sample in result["samples"])  # Redis was down
    assert s["latencyMs"]["p50"] > 0
    dom = subprocess.run(
        [*CHROMIUM, f"--user-data-dir={tmp_path / 'chromium'}", "--virtual-time-budget=5000", "--dump-dom",
         page.as_uri()],
        capture_output=True, text=True, timeout=120, check=True,
    ).stdout  # fmt: skip
    assert "chaos: no message lost" in dom
    images = re.findall(r"<img [^>]*>", dom)
    assert len(images) == 4
    assert all('data-loaded="true"' in img for img in images), images  # every plot decoded and drawn


def test_random_faults_strike_at_the_seconds_drawn_from_the_seed_and_nothing_is_lost(tmp_path: Path) -> None:
    """The shipped chaos-random scenario, its first 30 seconds: consumers killed and Redis
    restarted at seconds drawn from its seed, each on time, and every message processed."""
    from dataworks.core.streams.chaos import all_faults

    body = yaml.safe_load((ROOT / "benchmarks" / "scenarios" / "chaos-random.yaml").read_text())
    body["durationSeconds"] = 30
    scenario, out = tmp_path / "random.yaml", tmp_path / "random.json"
    scenario.write_text(yaml.safe_dump(body))
    drawn = all_faults(bench.load(str(scenario)))
    assert {f.action for f in drawn} == {"killConsumer", "restartRedis"}  # this seed's first 30 s
    cmd = [*CLI, "bench", "stream", str(scenario), "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert [(f["at"], f["action"]) for f in result["faults"]] == [(f.at, f.action) for f in drawn]
    assert all(0 <= f["t"] - f["at"] < 1.5 for f in result["faults"]), result["faults"]
    s = result["summary"]
    assert s["lost"] == 0
    assert s["processed"] == s["producedMessages"] > 100_000
    assert s["claimed"] > 0
    assert s["reconnects"] > 0


def test_consumers_run_under_their_resource_limits(tmp_path: Path) -> None:
    """consumers.resources: each consumer in a cgroup of its own, as a kubelet would put it
    (tests/local/test_cgroups.py checks the kernel enforces it): a consumer that would take more
    is held to its quarter core, reports the throttled periods, and still loses nothing."""
    scenario, out = tmp_path / "limited.yaml", tmp_path / "limited.json"
    scenario.write_text(
        "name: limited\n"
        "durationSeconds: 8\n"
        "generator: {seed: 3, rate: 40000}\n"
        "consumers: {count: 1, batch: 10, resources: {limits: {cpu: 250m, memory: 512Mi}}}\n"
    )
    cmd = [*CLI, "bench", "stream", str(scenario), "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["summary"]["lost"] == 0
    busy = [x for x in result["samples"] if x.get("processed") and x.get("lag")]  # work waiting
    assert len(busy) >= 5, result["samples"]
    cpu = [x["resources"]["consumers"]["user"] + x["resources"]["consumers"]["system"] for x in busy]
    assert max(cpu) < 0.35, cpu  # a quarter core a second, with the sampling's slack
    assert statistics.median(cpu) > 0.18, cpu  # and it used its quarter
    assert statistics.median(x["throttled"] for x in busy) > 0.8, busy


def test_a_streamingjob_scenario_scales_its_consumers_and_loses_nothing(tmp_path: Path) -> None:
    """The consumers are a StreamingJob's, run here by the operator's own controller: a consumer
    killed at the peak of a 15x step is restarted in place, the backlog it leaves makes the
    autoscaler ask for more (one consumer processes this load alone, so the catch-up time is
    short enough that the backlog decides), and every sequence number produced was processed."""
    scenario = tmp_path / "autoscaled.yaml"
    scenario.write_text(
        "name: autoscaled\n"
        "durationSeconds: 20\n"
        "drainSeconds: 60\n"
        "generator: {seed: 5, patterns: {steps: [{at: 0, rate: 2000}, {at: 6, rate: 30000},\n"
        "                                        {at: 12, rate: 2000}]}}\n"
        "streamingJob:\n"
        "  strategy: {default: latency}\n"
        "  scaling: {minReplicas: 1, maxReplicas: 3, catchUpSeconds: 0.1, scaleDownWindowSeconds: 5}\n"
        "faults: [{at: 9, action: killConsumer}]\n"
    )
    out = tmp_path / "autoscaled.json"
    cmd = [*CLI, "bench", "stream", str(scenario), "--json", str(out)]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    s = result["summary"]
    assert s["lost"] == 0
    assert s["processed"] == s["producedMessages"]
    samples = result["samples"]
    assert max(x.get("desiredReplicas") or 0 for x in samples) > 1, samples
    assert max(x["consumers"] for x in samples) > 1
    assert [f["action"] for f in result["faults"]] == ["killConsumer"]
    assert result["faults"][0]["consumer"].startswith("bench-")  # a pod of the StreamingJob's Deployment


def test_the_kafka_scenario_loses_nothing_when_a_consumer_is_killed_at_the_peak(
    tmp_path: Path, kafka_server: services.Kafka
) -> None:
    """The shipped Kafka scenario, shortened and pointed at the broker the tests start."""
    body = yaml.safe_load((ROOT / "benchmarks" / "scenarios" / "stress-10x-kafka.yaml").read_text())
    body |= {"durationSeconds": 16, "drainSeconds": 60}
    body["generator"]["patterns"]["steps"] = [
        {"at": 0, "rate": 2000},
        {"at": 4, "rate": 20000},
        {"at": 10, "rate": 2000},
    ]
    body["faults"] = [{"at": 7, "action": "killConsumer"}]
    scenario, out = tmp_path / "kafka.yaml", tmp_path / "kafka.json"
    scenario.write_text(yaml.safe_dump(body))
    cmd = [*CLI, "bench", "stream", str(scenario), "--json", str(out), "--kafka", kafka_server.bootstrap]
    env = services.with_kafka_tools()
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    assert result["scenario"]["kafka"]["bootstrap"] == kafka_server.bootstrap
    s = result["summary"]
    assert s["lost"] == 0
    assert s["processed"] == s["producedMessages"] > 100_000
    assert s["outOfOrder"] == 0  # each symbol in one partition
    # The ceiling: Kafka's producer perf tool into the same broker at the start, above the peak.
    assert s["ceilingTool"] == "kafka-producer-perf-test"
    assert s["ceiling"] > s["peakProduced"] > 5_000
    assert [f["action"] for f in result["faults"]] == ["killConsumer"]
    samples = result["samples"]
    assert all(x.get("lagExact") for x in samples if "lag" in x)
    assert samples[-1]["lag"] == 0
    assert samples[-1]["acked"] == samples[-1]["produced"] == s["producedMessages"]


@pytest.mark.parametrize("path", SCENARIOS, ids=lambda p: p.stem)
def test_every_shipped_scenario_is_valid(path: Path) -> None:
    scenario = bench.load(str(path))
    assert scenario.name == path.stem
    assert scenario.generator_config().duration_seconds > 0


def test_the_scenario_snippets_of_the_docs_are_valid() -> None:
    """Each yaml block of docs/streaming-bench.md is part of a scenario: with a name and a
    duration, it validates (and its random faults draw within the run)."""
    from dataworks.api.benchscenario import Scenario
    from dataworks.core.streams.chaos import all_faults

    text = (ROOT / "docs" / "streaming-bench.md").read_text()
    blocks = re.findall(r"```yaml\n(.*?)```", text, re.S)
    assert len(blocks) >= 2
    for block in blocks:
        scenario = Scenario.model_validate({"name": "doc", "durationSeconds": 60} | yaml.safe_load(block))
        if scenario.random_faults is not None:
            assert all_faults(scenario)


def test_a_bad_scenario_names_the_field_and_runs_nothing(tmp_path: Path) -> None:
    cases = {
        "consumers: {count: 0}": "field consumers.count: Input should be greater than or equal to 1",
        "generator: {rate: 100, count: 5}": "generator.count is set by the benchmark",
        "generator: {patterns: {diurnal: {timezone: Nowhere}}}": "unknown time zone 'Nowhere'",
        "faults: [{at: 99, action: killConsumer}]": "a fault's `at` must fall within durationSeconds",
        "faults: [{at: 1, action: unplug}]": "field faults.0.action",
        "consumers: {commitEvery: 2, claimIdleMs: 1000}": "commitEvery must be shorter than claimIdleMs",
        "streamingJob: {scaling: {minReplicas: 3, maxReplicas: 1}}": "minReplicas (3) must not exceed",
        "streamingJob: {source: {}}": "streamingJob.source is set by the benchmark",
        "streamingJob: {}\nfaults: [{at: 1, action: addConsumer}]": "addConsumer: with a streamingJob",
        "kafka: {bootstrap: 'kafka://k:9092'}": "field kafka.bootstrap",
        "kafka: {bootstrap: 'k:9092'}\nfaults: [{at: 1, action: restartRedis}]": "restartRedis: the bench",
        "kafka: {bootstrap: 'k:9092'}\nredis: {stream: other}": "give redis or kafka, not both",
        "kafka: {bootstrap: 'k:9092'}\nrandomFaults: {every: {restartRedis: 9}}": "restartRedis: the bench",
        "randomFaults: {every: {restartRedis: 2}}": "every.restartRedis (2 s) must be above 3 s",
        "randomFaults: {every: {unplug: 5}}": "field randomFaults.every.unplug",
        "consumers: {resources: {limits: {cpu: lots}}}": "field consumers.resources.limits.cpu",
    }
    for body, message in cases.items():
        path = tmp_path / "bad.yaml"
        path.write_text(f"name: bad\ndurationSeconds: 10\n{body}\n")
        done = subprocess.run(
            [*CLI, "bench", "stream", str(path), "--json", str(tmp_path / "r.json")],
            capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert done.returncode == 2, (body, done.stderr)
        assert message in done.stderr, (body, done.stderr)
        assert not (tmp_path / "r.json").exists()


def test_a_killed_benchmark_leaves_no_consumer_or_producer_running(tmp_path: Path) -> None:
    """SIGKILL gives the benchmark no chance to clean up: the consumers and the producer it
    started see their parent gone (DATAWORKS_EXIT_WITH_PARENT) and stop within seconds, and
    its redis-server gets SIGTERM from the kernel (PR_SET_PDEATHSIG)."""
    import contextlib
    import signal
    import time

    import psutil

    body = yaml.safe_load((ROOT / "benchmarks" / "scenarios" / "baseline.yaml").read_text())
    body |= {"durationSeconds": 120, "consumers": {"count": 2, "batch": 100}}
    body["generator"]["patterns"]["steps"] = [{"at": 0, "rate": 2000}]
    scenario = tmp_path / "long.yaml"
    scenario.write_text(yaml.safe_dump(body))
    bench_ = subprocess.Popen([*CLI, "bench", "stream", str(scenario)], stdout=subprocess.DEVNULL)
    started: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # redis-server, two consumers and the producer
            kids = psutil.Process(bench_.pid).children()
            started = [
                p for p in kids if p.name() == "redis-server" or {"consume", "generate"} & set(p.cmdline())
            ]
            if len(started) == 4:
                break
            time.sleep(0.2)
        assert len(started) == 4, [p.cmdline() for p in started]
        bench_.send_signal(signal.SIGKILL)
        bench_.wait()
        gone, alive = psutil.wait_procs(started, timeout=10)
        assert not alive, [p.cmdline() for p in alive]
        assert len(gone) == 4
    finally:
        bench_.kill()
        bench_.wait()
        for p in started:
            with contextlib.suppress(psutil.NoSuchProcess):
                p.kill()
