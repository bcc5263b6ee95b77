"""StreamingJobs on the real control plane, with consumers that run for real.

The consumer image is mapped to this checkout's virtualenv (the test control plane's exec
configuration), so every pod the Deployment controller creates runs `dataworks consume`
against a redis-server this module started, with a password the consumers get from a Secret
and the operator reads by name. Nothing is painted: lag, rates and replica counts are what the
operator measured.
"""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import redis
import yaml
from lightkube import Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.core_v1 import Pod, Secret

from dataworks.api import streamingjob
from dataworks.core.streams.sequences import check
from tests.cluster.conftest import REDIS_PASSWORD as PASSWORD
from tests.cluster.helpers import wait_for
from tests.cluster.pipelines import eventually
from tests.cluster.streams import StreamingJob, reasons, until
from tests.local import services

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "dataworks.cli.main"]
LABEL = streamingjob.OWNER_LABEL


@pytest.fixture
def broker(stream_broker: services.Redis) -> services.Redis:
    return stream_broker


@pytest.fixture
def r(broker: services.Redis) -> Iterator[redis.Redis]:
    client = redis.Redis(port=broker.port, password=PASSWORD)  # each test has its own stream
    yield client
    client.close()


def password_secret(client: Client, namespace: str) -> None:
    data = {"password": base64.b64encode(PASSWORD.encode()).decode()}
    client.create(Secret(metadata=ObjectMeta(name="redis"), data=data), namespace=namespace)


def manifest(name: str, server: services.Redis, stream: str, **spec: Any) -> dict[str, Any]:
    source = {
        "redis": {
            "address": f"redis://127.0.0.1:{server.port}/0",
            "passwordSecret": {"name": "redis", "key": "password"},
            "stream": stream,
            "group": "processors",
        }
    }
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "StreamingJob",
        "metadata": {"name": name},
        "spec": {"source": source, **spec},
    }


def status(client: Client, name: str, namespace: str) -> dict[str, Any]:
    return dict(client.get(StreamingJob, name, namespace=namespace).to_dict().get("status") or {})


def generate(server: services.Redis, stream: str, count: int, *args: str) -> None:
    target = f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0?stream={stream}"
    done = subprocess.run(
        [*CLI, "generate", "-q", "--count", str(count), *args, "-o", target],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr


def drained(r: redis.Redis, stream: str, count: int) -> bool:
    groups = r.xinfo_groups(stream) if r.exists(stream) else []
    g = next((g for g in groups if g["name"] == b"processors"), None)
    return g is not None and g["entries-read"] == count and g["pending"] == 0 and not g["lag"]


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_a_burst_scales_up_drains_and_scales_down(
    client: Client, namespace: str, broker: services.Redis, r: redis.Redis
) -> None:
    password_secret(client, namespace)
    scaling = {"minReplicas": 1, "maxReplicas": 3, "catchUpSeconds": 2, "scaleDownWindowSeconds": 8}
    # Batches of 10: one consumer then cannot keep up with the burst on this machine, whatever
    # its speed that day, so the autoscaler must ask for more (with the preset's 100, one
    # consumer sometimes drains the burst alone before a second is needed).
    body = manifest(
        "burst", broker, namespace, strategy={"default": "latency"}, scaling=scaling, batchSize=10
    )
    client.create(codecs.from_dict(body), namespace=namespace)
    until(
        client, "burst", namespace, lambda s: s.get("state") == "Running", "one consumer running", timeout=60
    )
    assert client.get(Deployment, "burst", namespace=namespace).spec.replicas == 1

    count = 300_000
    asked: list[int] = []  # the Deployment's replicas, sampled from before the burst to the drain
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            asked.append(client.get(Deployment, "burst", namespace=namespace).spec.replicas or 0)
            time.sleep(0.2)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    generate(broker, namespace, count)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not drained(r, namespace, count):
        time.sleep(0.2)
    done.set()
    sampler.join()
    assert drained(r, namespace, count), r.xinfo_groups(namespace)
    assert max(asked) > 1, f"never scaled up: {status(client, 'burst', namespace)}"

    dep = wait_for(
        client,
        Deployment,
        "burst",
        namespace,
        lambda d: d.spec.replicas == 1,
        timeout=60,
        what="the scale-down to minReplicas once drained",
    )
    assert dep.spec.replicas == 1
    # The status is patched after the Deployment in the same reconcile (and its last decision
    # may already be Steady at one consumer): wait for the drained status.
    st = until(client, "burst", namespace, lambda s: s.get("lag") == 0, "lag 0 in status", timeout=15)
    assert st["strategy"] == "latency"
    assert st["selector"] == f"{LABEL}=burst"
    # Events are posted by the operator's sender after the Deployment is patched, so the
    # ScaleDown Event can trail the patch seen above by a moment: wait for it.
    eventually(
        lambda: {"ScaleUp", "ScaleDown"} <= set(reasons(client, namespace, "burst")),
        timeout=15,
        what=f"ScaleUp and ScaleDown Events (have {reasons(client, namespace, 'burst')})",
    )


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_a_deleted_consumers_pending_entries_are_reclaimed_and_processed(
    client: Client, namespace: str, broker: services.Redis, r: redis.Redis
) -> None:
    # The victim hangs (SIGSTOP): the batch its blocked read is given, and one more read in its
    # name, stay pending to it; then its pod is force-deleted, as a node that vanished would.
    victim, pid = one_consumer(client, namespace, broker, r, "heal")
    os.kill(pid, signal.SIGSTOP)
    generate(broker, namespace, 1000, "--seed", "7")
    r.xreadgroup("processors", victim, {namespace: ">"}, count=400)
    taken = r.xpending(namespace, "processors")["pending"]
    assert taken >= 400
    client.delete(Pod, victim, namespace=namespace, grace_period=0)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not drained(r, namespace, 1000):
        time.sleep(0.05)
    assert drained(r, namespace, 1000), r.xinfo_groups(namespace)
    st = until(client, "heal", namespace, lambda s: s.get("reclaimed", 0) >= taken, "the reclaim in status")
    assert st["reclaimed"] == taken
    assert "Reclaimed" in reasons(client, namespace, "heal")
    # The replacement consumer processed them; the victim left the group once it had nothing pending.
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and victim in _members(r, namespace):
        time.sleep(0.2)
    assert victim not in _members(r, namespace)
    assert len(_members(r, namespace)) == 1


def one_consumer(
    client: Client, namespace: str, broker: services.Redis, r: redis.Redis, name: str
) -> tuple[str, int]:
    """A StreamingJob of one consumer, running and in the group: its pod's name and its PID."""
    password_secret(client, namespace)
    client.create(codecs.from_dict(manifest(name, broker, namespace, replicas=1)), namespace=namespace)
    wait_for(
        client,
        Deployment,
        name,
        namespace,
        lambda d: (d.status.readyReplicas or 0) == 1,
        timeout=60,
        what="one consumer ready",
    )
    [pod] = [p.metadata.name for p in client.list(Pod, namespace=namespace, labels={LABEL: name})]
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not _members(r, namespace):
        time.sleep(0.1)
    assert _members(r, namespace) == {pod}
    [pid] = [p.pid for p in psutil.process_iter(["cmdline"]) if _consumer_of(p.info["cmdline"]) == pod]
    return pod, pid


def _consumer_of(cmdline: list[str] | None) -> str | None:
    args = cmdline or []
    if "consume" not in args or "--consumer" not in args:
        return None
    return args[args.index("--consumer") + 1]


def _members(r: redis.Redis, stream: str) -> set[str]:
    if not r.exists(stream):
        return set()
    try:
        return {c["name"].decode() for c in r.xinfo_consumers(stream, "processors")}
    except redis.ResponseError:  # no group yet
        return set()


@pytest.mark.usefixtures("operator")
def test_a_password_secret_that_is_missing_degrades_with_the_field_and_an_event(
    client: Client, namespace: str, broker: services.Redis
) -> None:
    client.create(codecs.from_dict(manifest("nopass", broker, namespace)), namespace=namespace)
    st = until(client, "nopass", namespace, lambda s: s.get("state") == "Degraded", "Degraded")
    assert st["message"].startswith(
        "spec.source.redis.passwordSecret: cannot read key 'password' of Secret redis"
    )
    assert "BrokerUnreachable" in reasons(client, namespace, "nopass")
    # Consumers start anyway (their pods wait for the Secret); the count is the floor, not a guess.
    assert client.get(Deployment, "nopass", namespace=namespace).spec.replicas == 1
    password_secret(client, namespace)
    until(
        client, "nopass", namespace, lambda s: s.get("state") != "Degraded", "recovery once the Secret exists"
    )


def dataworks(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*CLI, *args], capture_output=True, text=True, check=False)


@pytest.mark.usefixtures("operator")
def test_scale_by_hand_and_back_and_describe_shows_the_live_figures(
    client: Client, namespace: str, broker: services.Redis, cluster: Any
) -> None:
    """The consumers are painted here (their image is not mapped): the figures are the stream's."""
    password_secret(client, namespace)
    # A short scale-down window: back on automatic, the autoscaler waits it out before going down.
    knob = manifest("knob", broker, namespace, scaling={"scaleDownWindowSeconds": 3})
    client.create(codecs.from_dict(knob), namespace=namespace)
    until(client, "knob", namespace, lambda s: s.get("lag") is not None, "a first reading")
    out = dataworks("scale", "stj/knob", "--replicas", "3", "-n", namespace)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "streamingjob.dataworks.io/knob scaled: 3 consumers (manual)"
    wait_for(client, Deployment, "knob", namespace, lambda d: d.spec.replicas == 3, what="3 consumers")
    st = until(
        client, "knob", namespace, lambda s: (s.get("lastDecision") or {}).get("reason") == "Manual", "Manual"
    )
    assert st["desiredReplicas"] == 3
    text = dataworks("describe", "stj/knob", "-n", namespace)
    assert text.returncode == 0, text.stderr
    assert "manual (3, dataworks scale --auto returns it)" in text.stdout
    assert "Lag:         0 waiting, 0 pending" in text.stdout
    assert "Decision:    Manual to 3" in text.stdout
    table = dataworks("get", "stj", "-n", namespace)
    assert table.returncode == 0, table.stderr
    assert "knob" in table.stdout
    assert "STRATEGY" in table.stdout.upper()
    # kubectl scale goes through the scale subresource to the same field.
    done = cluster.kubectl("scale", "stj/knob", "--replicas", "2", "-n", namespace, check=False)
    assert done.returncode == 0, done.stderr
    wait_for(client, Deployment, "knob", namespace, lambda d: d.spec.replicas == 2, what="2 consumers")
    assert dataworks("scale", "stj/knob", "--auto", "-n", namespace).returncode == 0
    assert "replicas" not in client.get(StreamingJob, "knob", namespace=namespace).to_dict()["spec"]
    wait_for(
        client,
        Deployment,
        "knob",
        namespace,
        lambda d: d.spec.replicas == 1,
        what="back to the floor",
        timeout=30,
    )
    refused = dataworks("scale", "stj/knob", "-n", namespace)
    assert refused.returncode == 2
    assert "exactly one of --replicas N or --auto" in refused.stderr


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_the_example_applies_as_written_and_consumes(
    client: Client, namespace: str, broker: services.Redis, r: redis.Redis
) -> None:
    """examples/streams/streamingjob.yaml, with only its Redis address pointed at the test's."""
    body = yaml.safe_load((REPO / "examples" / "streams" / "streamingjob.yaml").read_text())
    body["spec"]["source"]["redis"]["address"] = f"redis://127.0.0.1:{broker.port}/0"
    body["spec"]["source"]["redis"]["stream"] = namespace
    password_secret(client, namespace)
    client.create(codecs.from_dict(body), namespace=namespace)
    name = body["metadata"]["name"]
    # Whichever strategy the clock picks (the cost one starts no consumer until a message comes).
    st = until(client, name, namespace, lambda s: s.get("lag") is not None, "a first reading")
    assert st["strategy"] in {"throughput", "latency", "cost"}
    generate(broker, namespace, 20_000)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not drained(r, namespace, 20_000):
        time.sleep(0.2)
    assert drained(r, namespace, 20_000), r.xinfo_groups(namespace)
    # The status follows within its 5 s write bound.
    st = until(
        client, name, namespace, lambda s: s.get("state") == "Running" and s.get("lag") == 0, "caught up"
    )
    assert st["readyReplicas"] >= 1


def test_the_consumers_keep_consuming_through_an_operator_sigkill_and_an_upgrade(
    client: Client,
    namespace: str,
    *,
    broker: services.Redis,
    r: redis.Redis,
    operator: Any,
    consumer_reports: Path,
    tmp_path: Path,
) -> None:
    """The operator is killed (SIGKILL), then later stopped and started again (an upgrade: the
    old process ends, a new one starts), and a consumer pod is deleted, while 100,000 messages
    arrive at 10,000 a second. The consumers never depend on the operator: every message is
    delivered and acknowledged, and, by the consumers' own reports, every sequence number was
    processed at least once; the duplicates are counted."""
    password_secret(client, namespace)
    client.create(codecs.from_dict(manifest("steady", broker, namespace, replicas=2)), namespace=namespace)
    wait_for(
        client,
        Deployment,
        "steady",
        namespace,
        lambda d: (d.status.readyReplicas or 0) == 2,
        timeout=60,
        what="two consumers ready",
    )
    producer = subprocess.Popen(
        [
            *CLI,
            "generate",
            "-q",
            "--count",
            "100000",
            "--rate",
            "10000",
            "--realtime",
            "-o",
            f"redis://:{PASSWORD}@127.0.0.1:{broker.port}/0?stream={namespace}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        time.sleep(2)
        operator.stop(kill=True)
        time.sleep(2)
        operator.start()
        time.sleep(3)
        operator.stop()
        operator.start()
        victim = sorted(
            p.metadata.name for p in client.list(Pod, namespace=namespace, labels={LABEL: "steady"})
        )[0]
        client.delete(Pod, victim, namespace=namespace)  # its batch in hand is acknowledged on SIGTERM
        _, err = producer.communicate(timeout=120)
        assert producer.returncode == 0, err
    finally:
        if producer.poll() is None:
            producer.kill()
            producer.communicate()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not drained(r, namespace, 100_000):
        time.sleep(0.2)
    assert drained(r, namespace, 100_000), r.xinfo_groups(namespace)
    # Every message acknowledged was in a report first: check them by sequence number against
    # what the generator produced (the same seed, written to a file).
    sent = tmp_path / "sent.jsonl"
    done = subprocess.run([*CLI, "generate", "-q", "--count", "100000", "-o", str(sent)], check=False)
    assert done.returncode == 0
    expected: dict[str, int] = {}
    for line in sent.read_bytes().splitlines():
        m = json.loads(line)
        expected[m["symbol"]] = max(expected.get(m["symbol"], 0), m["sequence_number"])
    reports = [json.loads(p.read_text()) for p in consumer_reports.glob("*.json")]
    assert len(reports) >= 3  # two consumers, and the deleted one's replacement
    result = check(reports, expected)
    assert result["lost"] == 0, result
    assert result["distinct"] == 100_000
    duplicated = result["duplicated"] + sum(rep["duplicates"] for rep in reports)
    print(f"100,000 messages: 0 lost, {duplicated} processed twice")  # the figure the note quotes
    # The new operator took over where the old one was: the same Deployment, still two consumers.
    assert client.get(Deployment, "steady", namespace=namespace).spec.replicas == 2
    until(
        client, "steady", namespace, lambda s: s.get("lag") == 0 and s.get("state") == "Running", "caught up"
    )


@pytest.mark.usefixtures("consumers_run_for_real", "operator")
def test_a_hung_consumer_is_restarted_by_its_liveness_probe_and_finishes_its_batch(
    client: Client, namespace: str, broker: services.Redis, r: redis.Redis
) -> None:
    pod, pid = one_consumer(client, namespace, broker, r, "hang")
    os.kill(pid, signal.SIGSTOP)  # hangs: its loop stops, and so does its alive file
    generate(broker, namespace, 1000, "--seed", "11")
    # It hangs with a batch in hand. Its blocked read takes one only if the messages come before
    # its BLOCK times out, a race; so take a batch in its name, as that read would have.
    r.xreadgroup("processors", pod, {namespace: ">"}, count=100)
    assert r.xpending(namespace, "processors")["pending"] >= 100
    restarted = wait_for(
        client,
        Pod,
        pod,
        namespace,
        lambda p: (
            (p.status.containerStatuses or [None])[0] is not None
            and (p.status.containerStatuses[0].restartCount or 0) >= 1
        ),
        timeout=90,
        what="a restart by the liveness probe",
    )
    assert restarted.metadata.name == pod  # restarted in place, under its name
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not drained(r, namespace, 1000):
        time.sleep(0.1)
    assert drained(r, namespace, 1000), r.xinfo_groups(namespace)
    assert status(client, "hang", namespace).get("reclaimed", 0) == 0  # its own restart re-read them
