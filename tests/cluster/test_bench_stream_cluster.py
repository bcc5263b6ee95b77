"""`dataworks bench stream --cluster` on the real control plane, with consumers that run for real.

The scenario's StreamingJob is created by the benchmark and run by the operator; its consumer
pods run `dataworks consume` (the test control plane's exec configuration) against a
redis-server with a password, which the benchmark moves into a Secret of its own. The loss
check reads the reports the consumers committed to Redis before they acknowledged: no file of
a pod is read.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import redis
from lightkube import Client
from lightkube.resources.core_v1 import Secret

from dataworks.streams.reportstore import reports_key
from tests.cluster.conftest import REDIS_PASSWORD as PASSWORD
from tests.cluster.streams import StreamingJob
from tests.local import services

CLI = [sys.executable, "-m", "dataworks.cli.main"]

SCENARIO = """\
name: on-cluster
durationSeconds: 16
drainSeconds: 90
redis: {{stream: {stream}}}
generator:
  seed: 8
  patterns: {{steps: [{{at: 0, rate: 2000}}, {{at: 5, rate: 20000}}, {{at: 10, rate: 2000}}]}}
streamingJob:
  strategy: {{default: latency}}
  batchSize: 50
  scaling: {{minReplicas: 1, maxReplicas: 3, catchUpSeconds: 0.5, scaleDownWindowSeconds: 5}}
faults: [{{at: 8, action: killConsumer}}]
"""


def bench(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*CLI, "bench", "stream", *args], capture_output=True, text=True, timeout=400, check=False
    )


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_a_scenario_on_the_cluster_runs_under_the_operator_survives_a_deleted_pod_and_loses_nothing(
    client: Client, namespace: str, stream_broker: services.Redis, tmp_path: Path
) -> None:
    scenario = tmp_path / "on-cluster.yaml"
    scenario.write_text(SCENARIO.format(stream=namespace))
    url = f"redis://:{PASSWORD}@127.0.0.1:{stream_broker.port}/0"
    out = tmp_path / "on-cluster.json"
    done = bench(str(scenario), "--cluster", "-n", namespace, "--redis", url, "--json", str(out))
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    s = result["summary"]
    assert s["lost"] == 0
    assert s["processed"] == s["producedMessages"] > 80_000
    samples = result["samples"]
    # The operator's autoscaler decides (one consumer may do at this rate); the benchmark samples it.
    assert all(x.get("desiredReplicas") for x in samples[2:]), samples
    assert max(x["consumers"] for x in samples) >= 1  # pods that ran
    assert any(x.get("p99") is not None for x in samples)  # figures the consumers published in Redis
    # A pod is out of psutil's reach: the consumers' CPU and memory are their own, published.
    own = [x["resources"]["consumers"] for x in samples if "consumers" in x["resources"]]
    assert len(own) >= 5, samples
    assert max(r["user"] + r["system"] for r in own) > 0.05  # they worked
    assert all(20 < r["rssMiB"] < 4096 for r in own), own  # a Python consumer's memory
    [fault] = result["faults"]
    assert fault["action"] == "killConsumer"
    assert fault["consumer"].startswith("bench-on-cluster-")
    # The killed pod's report is there beside its replacement's: at least 2 consumer processes.
    assert len(result["consumers"]) >= 2, [c["consumer"] for c in result["consumers"]]
    assert fault["consumer"] in {c["consumer"] for c in result["consumers"]}
    r = redis.Redis(port=stream_broker.port, password=PASSWORD)
    assert r.hlen(reports_key(namespace, "bench")) == len(result["consumers"])
    r.close()
    # Nothing of the benchmark is left on the cluster, and no password went into a spec.
    assert not list(client.list(StreamingJob, namespace=namespace))
    assert not [x for x in client.list(Secret, namespace=namespace) if x.metadata.name.startswith("bench-")]


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_a_kafka_scenario_on_the_cluster_reads_the_reports_from_the_reports_topic(
    client: Client, namespace: str, kafka_broker: services.Kafka, tmp_path: Path
) -> None:
    scenario = tmp_path / "on-kafka.yaml"
    body = SCENARIO.format(stream=namespace).replace("name: on-cluster", "name: on-kafka")
    body = body.replace(f"redis: {{stream: {namespace}}}", "kafka: {bootstrap: 127.0.0.1:1, partitions: 3}")
    scenario.write_text(body.replace("killConsumer", "pauseProducer, seconds: 2"))
    out = tmp_path / "on-kafka.json"
    done = bench(
        str(scenario), "--cluster", "-n", namespace, "--kafka", kafka_broker.bootstrap, "--json", str(out)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result = json.loads(out.read_text())
    s = result["summary"]
    assert s["lost"] == 0
    assert s["processed"] == s["producedMessages"] > 60_000
    assert s["outOfOrder"] == 0  # one symbol, one partition
    samples = result["samples"]
    assert any(x.get("p99") is not None for x in samples)  # figures from the group's commit metadata
    assert 1 <= max(x.get("desiredReplicas") or 0 for x in samples) <= 3  # capped at the 3 partitions
    assert max(x["consumers"] for x in samples) <= 3
    assert result["consumers"]  # the reports, read back from the reports topic
    assert not list(client.list(StreamingJob, namespace=namespace))


@pytest.mark.usefixtures("operator")
def test_cluster_mode_refuses_what_it_cannot_run_before_creating_anything(
    client: Client, namespace: str, tmp_path: Path
) -> None:
    scenario = tmp_path / "s.yaml"
    unreachable = "redis://127.0.0.1:1/0"
    cases = [
        # The benchmark would start a Redis on this machine, out of a real cluster's pods' reach.
        (SCENARIO.format(stream="s"), [], "--cluster needs a Redis the pods can reach: --redis URL"),
        ("name: fixed\ndurationSeconds: 5\ngenerator: {rate: 10}\n", [], "--cluster runs a StreamingJob"),
        (
            SCENARIO.format(stream="s").replace("killConsumer", "restartRedis"),
            ["--redis", unreachable],
            "faults restartRedis are for a run here",
        ),
    ]
    for body, extra, message in cases:
        scenario.write_text(body)
        done = bench(str(scenario), "--cluster", "-n", namespace, *extra, "--json", str(tmp_path / "x.json"))
        assert done.returncode == 2, done.stdout + done.stderr
        assert message in done.stderr
    assert not list(client.list(StreamingJob, namespace=namespace))
