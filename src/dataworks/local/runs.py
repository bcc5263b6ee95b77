"""Local run directories (edge layer): where a local run keeps its spec, status, logs and data.

<workdir>/runs/<run>/
    pipeline.json     the resource as run (a Pipeline or a SequentialJob: metadata and spec,
                      params applied)
    status.json       its status, written after every change
    steps/<step>.json the step definitions the workers read (the ConfigMap's files)
    manifests/        every Job and ConfigMap as the operator would create it
    pods/<job>/       the emptyDir volumes of a Job's pods
    claims/<claim>/   a PersistentVolumeClaim: a folder every step that mounts it shares
    logs/<step>/attempt-<a>/worker-<i>.log   (retries of a worker append to its file)
    store/            the artifact store (file://)
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataworks.api import pipeline as api

DEFAULT_WORKDIR = ".dataworks"


def workdir(value: str | None) -> Path:
    return Path(value or os.environ.get("DATAWORKS_WORKDIR") or DEFAULT_WORKDIR).resolve()


def new_run_name(pipeline: str, existing: set[str]) -> str:
    while True:
        name = f"{pipeline}-{secrets.token_hex(2)}"
        if name not in existing:
            return name


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def store(self) -> Path:
        return self.path / "store"

    def log(self, step: str, attempt: int, index: int) -> Path:
        return self.path / "logs" / step / f"attempt-{attempt}" / f"worker-{index}.log"

    def logs(self, step: str | None = None) -> list[Path]:
        base = self.path / "logs" / step if step else self.path / "logs"
        return sorted(base.rglob("*.log")) if base.is_dir() else []

    def pipeline(self) -> dict[str, Any]:
        return dict(json.loads((self.path / "pipeline.json").read_text()))

    def save_pipeline(self, obj: dict[str, Any]) -> None:
        _write(self.path / "pipeline.json", obj)

    def kind(self) -> str:
        """The kind of the resource this run runs."""
        return str(self.pipeline().get("kind") or api.KIND)

    def raw_status(self) -> dict[str, Any]:
        """The status as saved, for a run of any kind."""
        path = self.path / "status.json"
        return dict(json.loads(path.read_text())) if path.is_file() else {}

    def save_raw_status(self, status: dict[str, Any]) -> None:
        _write(self.path / "status.json", status)

    def status(self) -> api.PipelineStatus:
        path = self.path / "status.json"
        if not path.is_file():
            return api.PipelineStatus()
        return api.PipelineStatus.model_validate_json(path.read_text())

    def save_status(self, status: api.PipelineStatus) -> None:
        _write(self.path / "status.json", status.model_dump(mode="json", by_alias=True, exclude_none=True))

    def as_object(self) -> dict[str, Any]:
        """The run as the object it runs (a Pipeline, ...), so the cluster's formatting renders it too."""
        obj = self.pipeline()
        if self.kind() == api.KIND:
            obj["status"] = self.status().model_dump(mode="json", by_alias=True, exclude_none=True)
        else:
            obj["status"] = self.raw_status()
        return obj


def _write(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=1, sort_keys=True))
    os.replace(tmp, path)


def list_runs(root: Path) -> list[RunDir]:
    base = root / "runs"
    if not base.is_dir():
        return []
    runs = [RunDir(p) for p in base.iterdir() if (p / "pipeline.json").is_file()]
    return sorted(runs, key=lambda r: (r.path / "pipeline.json").stat().st_mtime)


def latest_of(root: Path, pipeline: str) -> dict[str, Any] | None:
    """The newest local run of pipeline `pipeline` (by the name in its manifest) as the Pipeline
    it ran, named `pipeline`: what a pipelineDependency sees of it here."""
    label = "dataworks.io/pipeline-name"
    found = [
        r
        for r in list_runs(root)
        if r.kind() == api.KIND
        and ((r.pipeline().get("metadata") or {}).get("labels") or {}).get(label) == pipeline
    ]
    if not found:
        return None
    obj = found[-1].as_object()
    obj["metadata"] = {**obj.get("metadata", {}), "name": pipeline}
    return obj


def find_run(root: Path, name: str | None) -> RunDir | None:
    """A run by name, or the newest run when no name is given."""
    runs = list_runs(root)
    if name is None:
        return runs[-1] if runs else None
    return next((r for r in runs if r.name == name), None)
