"""The TrainingJob resource, dataworks.io/v1 (pure layer).

Distributed PyTorch training on one Indexed Job (a worker per completion
index), a headless Service that gives each worker a stable DNS name, a
ConfigMap of hyperparameters and a checkpoint volume. The seed's fields keep
their meanings and bounds (`../shared/seeds/002`); `image`, `command`, `env`,
scheduling, `suspend` and the deadlines are what a real job adds. These models
are the one definition of the resource: the operator parses with them and
`dataworks.api.crdgen` renders the CRD (schema, CEL rules, printer columns).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field

from dataworks.api.meta import GROUP, VERSION, Condition, KindInfo, Model, StatusModel
from dataworks.api.pods import EnvVar, FreeForm, ResourceRequirements

KIND = "TrainingJob"
PLURAL = "trainingjobs"
OWNER_LABEL = "dataworks.io/trainingjob"
MAX_NAME = 50  # the Job is <name>-a<attempt>, and its pods' hostnames add -<index>: within 63
IMMUTABLE = ("model", "dataset", "numWorkers", "gpusPerWorker")


class CheckpointStorage(Model):
    """Where checkpoints live."""

    type: Literal["pvc", "s3", "gcs"] = Field(
        "pvc",
        description="pvc: a PersistentVolumeClaim the operator creates; s3 or gcs: an object store URL.",
    )
    path: str = Field(
        "/checkpoints",
        description="pvc: the mount path in every worker; s3/gcs: the URL prefix (s3://bucket/prefix).",
    )


class CheckpointSpec(Model):
    """How training state is saved and resumed."""

    enabled: bool = Field(True, description="Save checkpoints, and resume from the latest after a restart.")
    frequency: int = Field(1, ge=1, description="Save every N epochs.")
    storage: CheckpointStorage = Field(default_factory=CheckpointStorage)
    size: str = Field("10Gi", description="Size of the checkpoint claim (storage type pvc).")
    storage_class: str | None = Field(None, description="StorageClass of the claim (default: the cluster's).")
    keep_last: int = Field(3, ge=1, le=100, description="Checkpoints kept; older ones are removed.")


class Networking(Model):
    """How the workers find and talk to each other."""

    backend: Literal["nccl", "gloo"] | None = Field(
        None, description="torch.distributed backend (default: nccl with GPUs, gloo without)."
    )
    master_port: int = Field(29500, ge=1024, le=65535, description="Worker 0's rendezvous port.")
    rendezvous_timeout_seconds: int = Field(
        600,
        ge=10,
        le=86400,
        description="How long workers 1.. wait for worker 0's port to accept connections before "
        "their pod fails with reason RendezvousTimeout (with more than one worker).",
    )


class FailurePolicy(Model):
    """Failures a gang restart cannot fix: the TrainingJob fails at once, naming the worker."""

    non_retryable_exit_codes: list[int] = Field(
        default_factory=list,
        description="Exit codes that fail the training at once (e.g. 2 for bad arguments).",
    )
    non_retryable_reasons: list[str] = Field(
        default_factory=list, description="Termination reasons that fail it at once (e.g. OOMKilled)."
    )


class MLflowTracking(Model):
    """One MLflow run per TrainingJob, which every attempt continues (`dataworks.training.Tracker`)."""

    tracking_uri: str = Field(
        pattern=r"^https?://[^\s]+$",
        description="The MLflow tracking server, e.g. http://mlflow.ml.svc:5000 (MLFLOW_TRACKING_URI).",
    )
    experiment: str | None = Field(
        None, min_length=1, max_length=500, description="Experiment name (default: the namespace)."
    )
    credentials_secret: str | None = Field(
        None,
        min_length=1,
        max_length=253,
        description="A Secret in the namespace whose keys become the workers' environment, e.g. "
        "MLFLOW_TRACKING_USERNAME and MLFLOW_TRACKING_PASSWORD, or MLFLOW_TRACKING_TOKEN.",
    )


class Tracking(Model):
    """Experiment tracking."""

    mlflow: MLflowTracking | None = None


class TrainingJobSpec(Model):
    """What to train, on how many workers, and how to survive failures."""

    model: str = Field(min_length=1, max_length=253, description="Model architecture to train.")
    dataset: str = Field(min_length=1, max_length=253, description="Dataset to train on.")
    num_workers: int = Field(1, ge=1, le=32, description="Distributed workers (pods), one per Job index.")
    gpus_per_worker: int = Field(1, ge=0, le=8, description="GPUs (nvidia.com/gpu) of each worker.")
    hyperparameters: dict[str, Any] = Field(
        default_factory=dict,
        description="Training hyperparameters (learningRate, batchSize, epochs, ...): hyperparameters.json "
        "in the config ConfigMap and HYPERPARAM_<NAME> in each worker's environment.",
    )
    resources: ResourceRequirements | None = Field(None, description="Requests and limits of each worker.")
    backoff_limit: int = Field(
        3, ge=0, le=10, description="Gang restarts after a worker fails (disruptions do not count)."
    )
    failure_policy: FailurePolicy = Field(default_factory=FailurePolicy)
    checkpoint: CheckpointSpec = Field(default_factory=CheckpointSpec)
    networking: Networking = Field(default_factory=Networking)
    framework: Literal["pytorch"] = Field("pytorch", description="Training framework.")
    image: str | None = Field(
        None, description="Worker image (default: the operator's trainingJobs.imagePattern with the model)."
    )
    command: list[str] | None = Field(
        None, description="Entrypoint (default: torchrun /app/train.py, configured by PET_* variables)."
    )
    args: list[str] | None = Field(None, description="Arguments of the entrypoint.")
    env: list[EnvVar] | None = Field(None, description="More environment variables of each worker.")
    pod_labels: dict[str, str] | None = Field(None, description="More labels of the worker pods.")
    pod_annotations: dict[str, str] | None = Field(None, description="Annotations of the worker pods.")
    node_selector: dict[str, str] | None = Field(None, description="Node selector of the workers.")
    tolerations: list[FreeForm] | None = Field(None, description="Tolerations of the workers.")
    service_account_name: str | None = Field(None, description="ServiceAccount of the workers.")
    suspend: bool = Field(False, description="Pause: the workers are stopped (SIGTERM first, to checkpoint).")
    active_deadline_seconds: int | None = Field(None, ge=1, description="Deadline of the whole training.")
    progress_deadline_seconds: int = Field(
        600,
        ge=10,
        description="Seconds without reported progress, while the workers run, before the Stalled "
        "condition turns True (a hung collective is noticed by no peer).",
    )
    ttl_seconds_after_finished: int | None = Field(
        None, ge=0, description="Delete the TrainingJob (and its children) this long after it finishes."
    )
    tracking: Tracking | None = Field(None, description="Experiment tracking (MLflow).")


State = Literal["Created", "Initializing", "Running", "Restarting", "Succeeded", "Failed", "Suspended"]


class Restart(StatusModel):
    """One gang restart."""

    attempt: int = Field(description="The attempt that started.")
    cause: str = Field(description="OOMKilled, ExitCode, Evicted, Preempted, NodeLost, ImagePull, ...")
    worker: int | None = Field(None, description="The worker (completion index) that failed first.")
    exit_code: int | None = None
    message: str | None = None
    time: str | None = None
    counted: bool = Field(True, description="Whether it counted against backoffLimit (disruptions do not).")
    resumed_from_epoch: int | None = None
    recovered_after_seconds: float | None = Field(
        None, description="From the restart to every worker of the new attempt running again."
    )


class LastCheckpoint(StatusModel):
    epoch: int | None = None
    step: int | None = None
    path: str | None = None
    time: str | None = None


class TrackingStatus(StatusModel):
    """The experiment-tracking run, as rank 0 reported it."""

    mlflow_run_id: str | None = None
    mlflow_run_url: str | None = None


class TrainingJobStatus(StatusModel):
    """Observed state of the training."""

    state: State = "Created"
    observed_generation: int | None = None
    attempt: int = Field(1, description="The current attempt: 1, then one more per gang restart.")
    job_name: str | None = None
    ready: str | None = Field(None, description="Workers running of all, e.g. 2/4.")
    active_workers: int = 0
    restart_count: int = Field(0, description="Gang restarts that counted against backoffLimit.")
    restarts: list[Restart] = Field(default_factory=list)
    current_epoch: int | None = None
    current_step: int | None = None
    last_progress_time: str | None = Field(None, description="When rank 0 last reported a change.")
    total_epochs: int | None = None
    progress: str | None = Field(None, description='Training progress, e.g. "45%".')
    estimated_completion: str | None = Field(
        None, description="When the last epoch should end, at the pace since the start (restarts included)."
    )
    metrics: dict[str, float] = Field(default_factory=dict, description="Latest loss, accuracy, throughput.")
    last_checkpoint: LastCheckpoint | None = None
    tracking: TrackingStatus | None = None
    start_time: str | None = None
    completion_time: str | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


class TrainingJob(Model):
    """Distributed PyTorch training on an Indexed Job, with checkpoints and gang restarts."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: TrainingJobSpec
    status: TrainingJobStatus | None = None

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": f"size(self.metadata.name) <= {MAX_NAME}",
            "message": f"metadata.name must be at most {MAX_NAME} characters: the workers' hostnames "
            "are <name>-a<attempt>-<index>, at most 63",
        },
        *[
            {
                "rule": "!has(oldSelf.status) || !has(oldSelf.status.state) "
                "|| !(oldSelf.status.state in ['Initializing', 'Running', 'Restarting']) "
                f"|| (has(self.spec.{f}) == has(oldSelf.spec.{f}) "
                f"&& (!has(self.spec.{f}) || self.spec.{f} == oldSelf.spec.{f}))",
                "message": f"spec.{f} cannot change while the training runs: suspend it first, or create "
                "a new TrainingJob",
                "fieldPath": f".spec.{f}",
            }
            for f in IMMUTABLE
        ],
    ]


TERMINAL_STATES = frozenset({"Succeeded", "Failed"})

INFO = KindInfo(
    kind=KIND,
    plural=PLURAL,
    root=TrainingJob,
    spec=TrainingJobSpec,
    status=TrainingJobStatus,
    short_names=("tj",),
    printer_columns=(
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Ready", "type": "string", "jsonPath": ".status.ready"},
        {"name": "Epoch", "type": "integer", "jsonPath": ".status.currentEpoch"},
        {"name": "Progress", "type": "string", "jsonPath": ".status.progress"},
        {"name": "Loss", "type": "number", "jsonPath": ".status.metrics.loss"},
        {"name": "Restarts", "type": "integer", "jsonPath": ".status.restartCount"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    terminal_phases=TERMINAL_STATES,
    owner_label=OWNER_LABEL,
)
