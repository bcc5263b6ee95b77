"""The container processing on the real control plane: examples/streams/container-streamingjob.yaml,
with its Redis pointed at the test's. Its image is mapped (the test control plane's exec
configuration) to this checkout's virtualenv with examples/streams/enricher on PYTHONPATH, so
`python -m enricher` runs the example program on the consumer library, as its own image would.
Every large trade reaches the output stream, and every message is acknowledged."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml
from lightkube import Client, codecs
from lightkube.models.meta_v1 import ObjectMeta
from lightkube.resources.core_v1 import ConfigMap, Secret

from dataworks.api.config import OperatorConfig
from tests.cluster.conftest import REDIS_PASSWORD as PASSWORD
from tests.cluster.streams import StreamingJob, until
from tests.local import services

REPO = Path(__file__).resolve().parents[2]
CLI = [sys.executable, "-m", "dataworks.cli.main"]
EXAMPLE = REPO / "examples" / "streams" / "container-streamingjob.yaml"
COUNT = 30_000


@pytest.fixture
def enricher_image(client: Client) -> Iterator[dict[str, str]]:
    """The example's image, and the consumers', mapped to this checkout's virtualenv."""
    body = yaml.safe_load(EXAMPLE.read_text())
    image = body["spec"]["processing"]["container"]["image"]
    venv = str(Path(sys.executable).parent)
    program = str(REPO / "examples" / "streams" / "enricher")
    images = [
        {"image": OperatorConfig().streaming_jobs.image, "path": [venv], "expose": [sys.base_prefix]},
        {"image": image, "path": [venv], "expose": [sys.base_prefix, program],
         "env": {"PYTHONPATH": program, "PYTHONUNBUFFERED": "1"}},
    ]  # fmt: skip
    cm = ConfigMap(
        metadata=ObjectMeta(name="testcluster-exec"), data={"config.yaml": yaml.safe_dump({"images": images})}
    )
    client.apply(cm, namespace="kube-system", field_manager="dataworks-tests", force=True)
    yield {"image": image}
    client.delete(ConfigMap, "testcluster-exec", namespace="kube-system")


@pytest.mark.usefixtures("operator", "enricher_image")
def test_the_container_example_runs_the_users_program_on_every_message(
    client: Client, namespace: str, stream_broker: services.Redis, tmp_path: Path
) -> None:
    body = yaml.safe_load(EXAMPLE.read_text())
    address = f"redis://127.0.0.1:{stream_broker.port}/0"
    body["spec"]["source"]["redis"] |= {"address": address, "stream": namespace}
    out_stream = f"{namespace}-big"
    body["spec"]["processing"]["container"]["args"] = ["--out", address, "--stream", out_stream]
    data = {"password": base64.b64encode(PASSWORD.encode()).decode()}
    client.create(Secret(metadata=ObjectMeta(name="redis"), data=data), namespace=namespace)
    client.create(codecs.from_dict(body), namespace=namespace)
    name = body["metadata"]["name"]
    until(
        client, name, namespace, lambda s: (s.get("readyReplicas") or 0) >= 1, "a consumer ready", timeout=90
    )
    sent = tmp_path / "sent.jsonl"
    write = [*CLI, "generate", "-q", "--seed", "3", "--count", str(COUNT), "--rate", "3000"]
    done = subprocess.run([*write, "-o", str(sent)], capture_output=True, check=False)
    assert done.returncode == 0, done.stderr
    messages = [json.loads(line) for line in sent.read_text().splitlines()]
    big = {m["message_id"] for m in messages if m["type"] == "trade" and m["price"] * m["volume"] >= 500_000}
    assert big
    # The same messages into the stream, over ~10 s, so the operator's readings see them flow.
    target = f"redis://:{PASSWORD}@127.0.0.1:{stream_broker.port}/0?stream={namespace}"
    producer = subprocess.Popen([*write, "--realtime", "-o", target], stderr=subprocess.PIPE)
    r = redis.Redis(port=stream_broker.port, password=PASSWORD)
    deadline = time.monotonic() + 120
    rates = []  # the operator's measure of the group, from the figures the library publishes
    try:
        while time.monotonic() < deadline:
            rates.append(float(status(client, name, namespace).get("processingRate") or 0))
            g = next((x for x in r.xinfo_groups(namespace) if x["name"] == b"enrichers"), None)
            if g is not None and g["entries-read"] == COUNT and g["pending"] == 0:
                break
            time.sleep(0.3)
    finally:
        _, err = producer.communicate(timeout=60)
    assert producer.returncode == 0, err
    assert g is not None
    assert (g["entries-read"], g["pending"]) == (COUNT, 0), g
    published = [json.loads(f[b"data"]) for _, f in r.xrange(out_stream)]
    r.close()
    assert {m["message_id"] for m in published} == big  # at least once: every one, none other
    assert all(m["notional"] == round(m["price"] * m["volume"], 2) for m in published)
    # The operator measured it from the figures the library publishes, as for its own consumers.
    assert max(rates) > 0, rates
    st = until(client, name, namespace, lambda s: s.get("lag") == 0, "caught up")
    assert st["state"] == "Running"


def status(client: Client, name: str, namespace: str) -> dict[str, Any]:
    return dict(client.get(StreamingJob, name, namespace=namespace).to_dict().get("status") or {})
