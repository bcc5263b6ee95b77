"""Pure builder of a StreamingJob's child: the Deployment of its consumers.

Each consumer runs `dataworks consume` as one member of the group, named after its pod (the
downward API's `metadata.name`), so a consumer's name is stable for its pod's life and the
operator can tell which consumers of the group are gone. The Redis password comes from the
Secret the spec names, as REDIS_PASSWORD, never from the spec. A Kafka source gives the
consumers the bootstrap servers and the topic instead, and its TLS and SASL settings as the
KAFKA_* variables of streams/kafkaconf.py: the SASL username and password and the CA from
their Secrets. A sink's store credentials come from
the Secret it names, every key an environment variable (envFrom). What the active strategy sets
(batch size, blocking time, spot tolerations) is in the pod template; a strategy switch
rolls the consumers, each acknowledging its batch in hand on SIGTERM.

The Deployment's template carries a hash of itself (`TEMPLATE_HASH`), so the controller
patches the template only when what it would build changed.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from dataworks.api import streamingjob as api
from dataworks.api.streamalerts import webhook_env
from dataworks.core.streamingjobs.strategies import Strategy
from dataworks.manifests import pods
from dataworks.manifests.owner import Owner

TEMPLATE_HASH = "dataworks.io/template-hash"
CONTAINER = "consumer"
# Reclaim: the operator marks a gone consumer's entries as long idle, and each live consumer
# looks for such entries this often (XAUTOCLAIM), so they are processed again within about a
# second of the pod's deletion being observed.
CLAIM_IDLE_MS = 30_000
# Liveness: each consumer touches ALIVE_FILE at least once a second while its loop turns (on an
# emptyDir of its own); the kubelet restarts one whose file is older than ALIVE_SECONDS, a
# consumer that hangs. Restarted in place under its name, it re-reads its own pending entries.
ALIVE_DIR = "/var/run/dataworks"
ALIVE_FILE = f"{ALIVE_DIR}/alive"
ALIVE_SECONDS = 20


def probe_script(path: str, seconds: int = ALIVE_SECONDS) -> str:
    """The liveness probe's Python: exit 0 while `path` was touched in the last `seconds`."""
    return (
        "import os, sys, time\n"
        f"try:\n    age = time.time() - os.stat({path!r}).st_mtime\nexcept OSError:\n    sys.exit(1)\n"
        f"sys.exit(0 if age < {seconds} else 1)\n"
    )


CLAIM_EVERY_SECONDS = 0.5
# The taints cloud providers put on spot (preemptible) nodes, tolerated by the cost strategy.
SPOT_TOLERATIONS: tuple[dict[str, str], ...] = (
    {"key": "cloud.google.com/gke-spot", "operator": "Exists", "effect": "NoSchedule"},
    {"key": "kubernetes.azure.com/scalesetpriority", "operator": "Equal", "value": "spot",
     "effect": "NoSchedule"},
    {"key": "eks.amazonaws.com/capacityType", "operator": "Equal", "value": "SPOT", "effect": "NoSchedule"},
)  # fmt: skip


def deployment_name(name: str) -> str:
    return name


def command(spec: api.StreamingJobSpec, strategy: Strategy, *, reports: bool = False) -> list[str]:
    """The consumer's command; `reports`: each also commits its report (what it processed, by
    sequence number) to the broker, for a benchmark on the cluster (api.CONSUMER_REPORTS)."""
    src = spec.source.target()
    batch = spec.batch_size or strategy.batch_size
    block = spec.block_ms if spec.block_ms is not None else strategy.block_ms
    if src.broker == "kafka":
        # Kafka's coordinator moves a gone consumer's partitions itself: nothing to claim.
        where = ["--kafka", src.address, "--topic", src.stream]
    else:
        claim = ["--claim-idle-ms", str(CLAIM_IDLE_MS), "--claim-every", str(CLAIM_EVERY_SECONDS)]
        where = ["--redis", src.address, "--stream", src.stream, *claim]
    proc = spec.processing
    if proc.query is not None:
        where += ["--query", proc.query]
    if proc.sink is not None:
        where += ["--sink-url", proc.sink.url]
    if proc.alert is not None:
        where += [
            "--alert",
            json.dumps(proc.alert.model_dump(by_alias=True, exclude_none=True), sort_keys=True),
        ]
    return [
        "dataworks", "consume", *where,
        "--group", src.group,
        "--consumer", "$(POD_NAME)",
        "--start-from", src.start_from,
        "--processing", "count" if proc.type == "container" else proc.type,
        "--dedupe", str(proc.dedupe_window),
        "--batch", str(batch), "--block-ms", str(block),
        "--publish-stats",
        "--alive-file", ALIVE_FILE,
        *(["--report", "broker"] if reports else []),
    ]  # fmt: skip


def template(
    owner: Owner, spec: api.StreamingJobSpec, strategy: Strategy, image: str, *, reports: bool = False
) -> dict[str, Any]:
    """The consumers' pod template, hash included."""
    env: list[dict[str, Any]] = [
        {"name": "POD_NAME", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        {"name": "PYTHONUNBUFFERED", "value": "1"},
    ]
    src = spec.source.target()
    env += [{"name": name, "value": value} for name, value in src.kafka_settings().items()]
    for name, secret in src.secret_keys():  # credentials: from their Secrets, never in the spec
        env.append({"name": name, "valueFrom": {"secretKeyRef": {"name": secret.name, "key": secret.key}}})
    for i, hook in enumerate(spec.processing.alert.webhooks if spec.processing.alert else []):
        if hook.secret is not None:  # a URL with a token: from its Secret, never in the command
            ref = {"name": hook.secret.name, "key": hook.secret.key}
            env.append({"name": webhook_env(i), "valueFrom": {"secretKeyRef": ref}})
    consume = command(spec, strategy, reports=reports)
    own = spec.processing.container
    if own is not None:  # the user's program, on the consumer library: its arguments as JSON
        env.append({"name": api.CONSUMER_ENV, "value": json.dumps(consume[2:])})
        image, consume = own.image, [*own.command, *(own.args or [])]
    container: dict[str, Any] = {
        "name": CONTAINER,
        "image": image,
        "command": consume,
        "env": env,
        **_store_credentials(spec),
        "securityContext": pods.restricted_container(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "alive", "mountPath": ALIVE_DIR}],
        "livenessProbe": {
            "exec": {"command": ["python", "-c", probe_script(ALIVE_FILE)]},
            "initialDelaySeconds": ALIVE_SECONDS,
            "periodSeconds": 5,
            "failureThreshold": 2,
            "timeoutSeconds": 5,
        },
    }
    if spec.resources is not None:
        container["resources"] = spec.resources.model_dump(by_alias=True, exclude_none=True)
    pod: dict[str, Any] = {
        "containers": [container],
        "volumes": [{"name": "alive", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
        "securityContext": pods.restricted_pod(),
        "terminationGracePeriodSeconds": 30,
        "enableServiceLinks": False,
    }
    tolerations = list(spec.tolerations or [])
    if strategy.spot:
        tolerations += [dict(t) for t in SPOT_TOLERATIONS]
    if tolerations:
        pod["tolerations"] = tolerations
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.service_account_name:
        pod["serviceAccountName"] = spec.service_account_name
    labels = {**owner.labels(), "dataworks.io/strategy": strategy.name}
    body = {"metadata": {"labels": labels}, "spec": pod}
    digest = hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()[:16]
    body["metadata"]["annotations"] = {TEMPLATE_HASH: digest}
    return body


def _store_credentials(spec: api.StreamingJobSpec) -> dict[str, Any]:
    """The sink's (or the container program's) Secret, every key an environment variable."""
    proc = spec.processing
    name = (proc.sink.secret_name if proc.sink else None) or (
        proc.container.secret_name if proc.container else None
    )
    if name is None:
        return {}
    return {"envFrom": [{"secretRef": {"name": name}}]}


def template_hash(deployment: dict[str, Any]) -> str | None:
    meta = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    return (meta.get("annotations") or {}).get(TEMPLATE_HASH)


def deployment(
    owner: Owner,
    spec: api.StreamingJobSpec,
    strategy: Strategy,
    image: str,
    replicas: int,
    *,
    reports: bool = False,
) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": deployment_name(owner.name),
            "namespace": owner.namespace,
            "labels": owner.labels(),
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": owner.labels()},
            # A consumer acknowledges its batch before it stops; a new one starts before an old
            # one stops, so a strategy switch never leaves the group without a consumer.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}},
            "template": template(owner, spec, strategy, image, reports=reports),
        },
    }
