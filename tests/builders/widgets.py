"""A throwaway second kind, Widget (tests only): proves the registry, the runtime and the
kit carry any kind, not just Pipeline.

A Widget owns `spec.jobs` Jobs and completes when they all succeed. Its Jobs
may also carry a Pipeline's label (`spec.pipelineLabel`), as a hostile case:
the runtime must still route them to the Widget by their ownerReference.
`python -m tests.builders.widgets ARGS` runs dataworks-operator with the
Widget controller added to the ones it knows (`--controllers pipelines,widgets`).
"""

from __future__ import annotations

import sys
from datetime import datetime
from typing import Any

from pydantic import Field

from dataworks.api import kinds
from dataworks.api.meta import Condition, KindInfo, Model
from dataworks.controllers.base import Children, Controller
from dataworks.core.kit import jobs
from dataworks.core.kit.plan import Actions, Event
from dataworks.manifests.owner import Owner

FATE = "fate.testcluster.dataworks.io/"


class WidgetSpec(Model):
    jobs: int = Field(1, ge=1, le=10, description="How many Jobs the widget runs.")
    pipeline_label: str | None = Field(None, description="Also label the Jobs as this pipeline's.")


class WidgetStatus(Model):
    phase: str = "Pending"
    done: int = 0
    conditions: list[Condition] = Field(default_factory=list)


class Widget(Model):
    """A test kind that owns Jobs."""

    api_version: str = "dataworks.io/v1"
    kind: str = "Widget"
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: WidgetSpec
    status: WidgetStatus | None = None


INFO = KindInfo(
    kind="Widget",
    plural="widgets",
    root=Widget,
    spec=WidgetSpec,
    status=WidgetStatus,
    short_names=("wdg",),
    printer_columns=({"name": "Phase", "type": "string", "jsonPath": ".status.phase"},),
    terminal_phases=frozenset({"Completed"}),
    owner_label="dataworks.io/widget",
)


def registry() -> kinds.Registry:
    return kinds.default().with_kinds([INFO])


def job(owner: Owner, index: int, pipeline_label: str | None) -> dict[str, Any]:
    labels = {**owner.labels(), **({"dataworks.io/pipeline": pipeline_label} if pipeline_label else {})}
    security = {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {
            "name": f"{owner.name}-{index}",
            "namespace": owner.namespace,
            "labels": labels,
            "ownerReferences": [owner.reference()],
        },
        "spec": {
            "backoffLimit": 0,
            "template": {
                "metadata": {"labels": labels, "annotations": {FATE + "duration": "300ms"}},
                "spec": {
                    "restartPolicy": "Never",
                    "securityContext": {"runAsNonRoot": True, "runAsUser": 1000},
                    "containers": [
                        {
                            "name": "w",
                            "image": "busybox:1.36",
                            "command": ["true"],
                            "securityContext": security,
                        }
                    ],
                },
            },
        },
    }


class WidgetController(Controller):
    info = INFO
    owns = ("Job",)

    def plan(self, obj: dict[str, Any], children: Children, observed: Any, now: datetime) -> Actions:
        meta = obj["metadata"]
        spec = WidgetSpec.model_validate(obj.get("spec") or {})
        owner = Owner(info=INFO, name=meta["name"], namespace=meta["namespace"], uid=meta.get("uid", ""))
        present = {j["metadata"]["name"]: jobs.job_view(j) for j in children.get("Job", [])}
        actions = Actions()
        for i in range(spec.jobs):
            if f"{owner.name}-{i}" not in present:
                actions.create.append(job(owner, i, spec.pipeline_label))
        done = sum(1 for v in present.values() if v.state == "Succeeded")
        phase = "Completed" if done >= spec.jobs else "Running"
        old = obj.get("status") or {}
        new = {"phase": phase, "done": done}
        if {k: old.get(k) for k in new} != new:
            actions.status = new
            if phase == "Completed":
                actions.events.append(Event("Normal", "WidgetCompleted", f"{done} jobs done"))
        return actions


def main(argv: list[str]) -> int:
    from dataworks.operator import main as operator

    operator.CONTROLLERS["widgets"] = lambda config, metrics, notifier: WidgetController()
    return operator.main(argv)


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
