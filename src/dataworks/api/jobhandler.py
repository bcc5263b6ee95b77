"""The job-completion handler's vocabulary (pure layer): the labels, annotation and keys it
reads and writes, and the facts of the built-in kind it reconciles (batch/v1 Job).

A Job labelled `job-handler/enabled: "true"` is archived when it finishes: its
logs and results go into a ConfigMap named `<job>-results` (the seed's names),
which outlives the Job. `docs/jobhandler.md` is the user's page.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from dataworks.api.common import ARCHIVE_LABEL
from dataworks.api.meta import KindInfo, Model

ENABLED = ARCHIVE_LABEL  # on a Job: "true" opts it in (any other value does not)
CREATED = "job-handler/created"  # on an archive ConfigMap: "true"
STATUS = "job-handler/status"  # annotation on a handled Job: completed or failed
JOB_NAME = "job-name"  # on an archive ConfigMap (and, set by the Job controller, on pods)
JOB_UID = "dataworks.io/job-uid"  # on an archive ConfigMap: the Job run it holds
REASON = "JobProcessing"  # the one Event per Job

# The archive's keys: the seed's four, then ours.
KEY_JOB = "job-name"
KEY_COMPLETION = "completion-time"
KEY_STATUS = "status"
KEY_LOGS = "logs"
KEY_LOGS_GZ = "logs.gz"  # binaryData: the logs, gzip-compressed, when they are not small
KEY_RESULT = "result.json"
KEY_AVAILABLE = "logsAvailable"


class _Untyped(BaseModel):
    """A Job is Kubernetes' own kind: we read it as a dict, never through a model."""


# The built-in kind the handler reconciles. Its pods carry the Job controller's `job-name`
# label, and so do the archives: both reach the handler by that label.
JOB_INFO = KindInfo(
    kind="Job",
    plural="jobs",
    root=_Untyped,
    spec=_Untyped,
    status=_Untyped,
    owner_label=JOB_NAME,
    group="batch",
    version="v1",
    categories=(),
)


class JobHandlerConfig(Model):
    """The `jobHandler:` section of the operator's configuration."""

    enabled: bool = Field(True, description="Archive and clean up Jobs labelled job-handler/enabled=true.")
    log_budget_bytes: int = Field(
        950_000,
        ge=10_000,
        le=1_000_000,
        description="Bytes an archive's values may take (a ConfigMap holds at most 1,048,576).",
    )
    keep_per_container_bytes: int = Field(
        4 << 20,
        ge=4096,
        description="Bytes of one container's log held while capturing (its head and tail); "
        "what lies between is cut, with its size and sha256 recorded.",
    )
    retention_seconds: int = Field(
        7 * 24 * 3600, ge=60, description="Archives older than this are deleted (default 7 days)."
    )
    max_per_namespace: int = Field(
        500, ge=1, description="At most this many archives per namespace; the oldest go first."
    )
    artifact_store: str = Field(
        "",
        description="An fsspec URL (s3://bucket/prefix) where the full logs are also written; "
        "the archive keeps a pointer. Empty: ConfigMaps only.",
    )
