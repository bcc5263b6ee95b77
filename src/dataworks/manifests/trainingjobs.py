"""Pure builders for a TrainingJob's children: config ConfigMap, headless Service, checkpoint
claim, and the Indexed Job of each attempt.

Every worker finds worker 0 by a stable DNS name (the headless Service, with
`publishNotReadyAddresses`, is the Job's subdomain) and is configured for
torchrun by `PET_*` variables: `PET_NNODES`, `PET_NPROC_PER_NODE` (its GPUs,
or 1 on CPU), `PET_NODE_RANK` (its completion index), `PET_MASTER_ADDR` and
`PET_MASTER_PORT`; `MASTER_ADDR`, `MASTER_PORT`, `WORLD_SIZE` and `RANK` serve
scripts that do not use torchrun. The seed's `MODEL`, `DATASET`,
`NUM_WORKERS`, `GPUS_PER_WORKER` and `HYPERPARAM_*` follow, then the
checkpoint directory and the attempt (`dataworks.training` reads both).
The gang restarts as a whole, so the Job itself never retries a pod
(`backoffLimit: 0`); an eviction or preemption fails it too, through a
`podFailurePolicy` rule whose message names the disrupted pod, and the
controller restarts the gang without counting it.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from dataworks.api import trainingjob as api
from dataworks.core.kit.labels import LABEL_ATTEMPT
from dataworks.core.trainingjobs.planning import job_name
from dataworks.core.trainingjobs.workers import RENDEZVOUS_CONTAINER
from dataworks.manifests import pods
from dataworks.manifests.owner import Owner

GPU = "nvidia.com/gpu"
# Workers 1.. wait until worker 0's port accepts a TCP connection: a name that resolves is not
# enough (pytorch-operator#333). Python's standard library only, so any PyTorch image runs it.
WAIT_FOR_WORKER_0 = """
import os, socket, sys, time
if os.environ.get("JOB_COMPLETION_INDEX", "0") == "0":
    sys.exit(0)
host, port = os.environ["PET_MASTER_ADDR"], int(os.environ["PET_MASTER_PORT"])
limit = int(os.environ["DATAWORKS_RENDEZVOUS_TIMEOUT"])
deadline = time.monotonic() + limit
while True:
    try:
        socket.create_connection((host, port), timeout=2).close()
        sys.exit(0)
    except OSError as e:
        if time.monotonic() > deadline:
            text = f"worker 0 at {host}:{port} did not accept a connection within {limit}s: {e}"
            print(text, file=sys.stderr)
            try:
                with open(os.environ.get("DATAWORKS_TERMINATION_LOG", "/dev/termination-log"), "w") as f:
                    f.write(text)
            except OSError:
                pass
            sys.exit(1)
        time.sleep(0.5)
"""
DEFAULT_COMMAND = ["torchrun", "/app/train.py"]
CONFIG_HASH = "dataworks.io/config-hash"


def config_name(name: str) -> str:
    return f"{name}-config"


def claim_name(name: str) -> str:
    return f"{name}-checkpoints"


def _meta(owner: Owner, name: str) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": owner.namespace,
        "labels": owner.labels(),
        "ownerReferences": [owner.reference()],
    }


def backend(spec: api.TrainingJobSpec) -> str:
    return spec.networking.backend or ("nccl" if spec.gpus_per_worker else "gloo")


def config_data(spec: api.TrainingJobSpec) -> dict[str, str]:
    return {
        "model": spec.model,
        "dataset": spec.dataset,
        "framework": spec.framework,
        "backend": backend(spec),
        "masterPort": str(spec.networking.master_port),
        "hyperparameters.json": json.dumps(spec.hyperparameters, sort_keys=True, indent=1),
    }


def config_map(owner: Owner, spec: api.TrainingJobSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(owner, config_name(owner.name)),
        "data": config_data(spec),
    }


def service(owner: Owner, spec: api.TrainingJobSpec) -> dict[str, Any]:
    """Headless, and publishing workers before they are ready: rendezvous needs the names first."""
    port = spec.networking.master_port
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(owner, owner.name),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": owner.labels(),
            "ports": [{"name": "rendezvous", "port": port, "targetPort": port}],
        },
    }


def claim(owner: Owner, spec: api.TrainingJobSpec) -> dict[str, Any] | None:
    ck = spec.checkpoint
    if not ck.enabled or ck.storage.type != "pvc":
        return None
    out: dict[str, Any] = {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": _meta(owner, claim_name(owner.name)),
        "spec": {
            "accessModes": ["ReadWriteMany" if spec.num_workers > 1 else "ReadWriteOnce"],
            "resources": {"requests": {"storage": ck.size}},
        },
    }
    if ck.storage_class:
        out["spec"]["storageClassName"] = ck.storage_class
    return out


def _env_name(key: str) -> str:
    """learningRate -> LEARNING_RATE (the seed's HYPERPARAM_ names)."""
    return re.sub(r"[^A-Z0-9]+", "_", re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", key).upper()).strip("_")


def environment(owner: Owner, spec: api.TrainingJobSpec, attempt: int, master: str) -> list[dict[str, Any]]:
    port = str(spec.networking.master_port)
    rank = {
        "valueFrom": {
            "fieldRef": {"fieldPath": "metadata.annotations['batch.kubernetes.io/job-completion-index']"}
        }
    }
    env: list[dict[str, Any]] = [
        {"name": "PET_NNODES", "value": str(spec.num_workers)},
        {"name": "PET_NPROC_PER_NODE", "value": str(max(1, spec.gpus_per_worker))},
        {"name": "PET_NODE_RANK", **rank},
        {"name": "PET_MASTER_ADDR", "value": master},
        {"name": "PET_MASTER_PORT", "value": port},
        {"name": "MASTER_ADDR", "value": master},
        {"name": "MASTER_PORT", "value": port},
        {"name": "WORLD_SIZE", "value": str(spec.num_workers)},
        {"name": "RANK", **rank},
        {"name": "MODEL", "value": spec.model},
        {"name": "DATASET", "value": spec.dataset},
        {"name": "NUM_WORKERS", "value": str(spec.num_workers)},
        {"name": "GPUS_PER_WORKER", "value": str(spec.gpus_per_worker)},
        {"name": "DATAWORKS_BACKEND", "value": backend(spec)},
        {"name": "DATAWORKS_ATTEMPT", "value": str(attempt)},
    ]
    env += [
        {"name": f"HYPERPARAM_{_env_name(k)}", "value": v if isinstance(v, str) else json.dumps(v)}
        for k, v in sorted(spec.hyperparameters.items())
    ]
    if spec.checkpoint.enabled:
        env.append({"name": "DATAWORKS_CHECKPOINT_DIR", "value": spec.checkpoint.storage.path})
        env.append({"name": "DATAWORKS_CHECKPOINT_KEEP", "value": str(spec.checkpoint.keep_last)})
        env.append({"name": "DATAWORKS_CHECKPOINT_FREQUENCY", "value": str(spec.checkpoint.frequency)})
    mlflow = spec.tracking.mlflow if spec.tracking else None
    if mlflow is not None:
        env += [
            {"name": "MLFLOW_TRACKING_URI", "value": mlflow.tracking_uri},
            {"name": "DATAWORKS_MLFLOW_EXPERIMENT", "value": mlflow.experiment or owner.namespace},
            {"name": "DATAWORKS_RUN_KEY", "value": owner.uid or f"{owner.namespace}/{owner.name}"},
            {"name": "DATAWORKS_RUN_NAME", "value": f"{owner.namespace}/{owner.name}"},
        ]
    env += [e.model_dump(by_alias=True, exclude_none=True, mode="json") for e in spec.env or []]
    return env


KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"


def wait_for_worker_0(spec: api.TrainingJobSpec, image: str, master: str) -> dict[str, Any]:
    """The init container of every worker: index 0 passes at once, the others wait for its port."""
    net = spec.networking
    return {
        "name": RENDEZVOUS_CONTAINER,
        "image": image,
        "command": ["python3", "-c", WAIT_FOR_WORKER_0],
        "env": [
            {"name": "PET_MASTER_ADDR", "value": master},
            {"name": "PET_MASTER_PORT", "value": str(net.master_port)},
            {"name": "DATAWORKS_RENDEZVOUS_TIMEOUT", "value": str(net.rendezvous_timeout_seconds)},
        ],
        "securityContext": pods.restricted_container(),
        "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}},
    }


def job(
    owner: Owner, spec: api.TrainingJobSpec, attempt: int, image: str, queue: str | None = None
) -> dict[str, Any]:
    """The Indexed Job of one attempt: one worker per completion index. With `queue` (the
    TrainingJob's Kueue queue-name label), Kueue admits the whole gang as one unit."""
    name = job_name(owner.name, attempt)
    master = f"{name}-0.{owner.name}.{owner.namespace}.svc"
    resources = (
        spec.resources.model_dump(by_alias=True, exclude_none=True, mode="json") if spec.resources else {}
    )
    if spec.gpus_per_worker:
        resources.setdefault("limits", {})[GPU] = str(spec.gpus_per_worker)
        resources.setdefault("requests", {})[GPU] = str(spec.gpus_per_worker)
    mounts = [{"name": "dshm", "mountPath": "/dev/shm"}]
    volumes: list[dict[str, Any]] = [{"name": "dshm", "emptyDir": {"medium": "Memory"}}]
    if claim(owner, spec) is not None:
        mounts.append({"name": "checkpoints", "mountPath": spec.checkpoint.storage.path})
        volumes.append(
            {"name": "checkpoints", "persistentVolumeClaim": {"claimName": claim_name(owner.name)}}
        )
    container: dict[str, Any] = {
        "name": "worker",
        "image": image,
        "command": spec.command or DEFAULT_COMMAND,
        "env": environment(owner, spec, attempt, master),
        "ports": [{"name": "rendezvous", "containerPort": spec.networking.master_port}],
        "volumeMounts": mounts,
        "securityContext": pods.restricted_container(),
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if spec.args:
        container["args"] = spec.args
    secret = spec.tracking.mlflow.credentials_secret if spec.tracking and spec.tracking.mlflow else None
    if secret:  # credentials only from a Secret, never a literal value
        container["envFrom"] = [{"secretRef": {"name": secret}}]
    if resources:
        container["resources"] = resources
    digest = hashlib.sha256(json.dumps(config_data(spec), sort_keys=True).encode()).hexdigest()[:16]
    labels = {**owner.labels(), LABEL_ATTEMPT: str(attempt)}
    job_labels = {**labels, **({KUEUE_QUEUE: queue} if queue else {})}
    pod_labels = {**(spec.pod_labels or {}), **labels}
    annotations = {**(spec.pod_annotations or {}), CONFIG_HASH: digest}
    pod: dict[str, Any] = {
        "restartPolicy": "Never",
        "subdomain": owner.name,
        "securityContext": pods.restricted_pod(),
        "containers": [container],
        "volumes": volumes,
    }
    if spec.num_workers > 1:
        pod["initContainers"] = [wait_for_worker_0(spec, image, master)]
    if spec.node_selector:
        pod["nodeSelector"] = spec.node_selector
    tolerations = list(spec.tolerations or [])
    if spec.gpus_per_worker:
        tolerations.append({"key": GPU, "operator": "Exists", "effect": "NoSchedule"})
    if tolerations:
        pod["tolerations"] = tolerations
    if spec.service_account_name:
        pod["serviceAccountName"] = spec.service_account_name
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {**_meta(owner, name), "labels": job_labels},
        "spec": {
            "completionMode": "Indexed",
            "completions": spec.num_workers,
            "parallelism": spec.num_workers,
            "backoffLimit": 0,
            # A disrupted worker fails the Job at once, and the Job's failure message names
            # the pod and its DisruptionTarget, so the eviction is still known once the pod is gone.
            "podFailurePolicy": {
                "rules": [
                    {"action": "FailJob", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}
                ]
            },
            "template": {"metadata": {"labels": pod_labels, "annotations": annotations}, "spec": pod},
        },
    }
