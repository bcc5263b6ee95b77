"""A TrainingJob run on this machine (edge layer), by the operator's own controller.

Its workers are processes started from the Indexed Job the cluster would get
(the local kubelet): each gets the `PET_*` variables of its index, worker 0's
Service name resolves to 127.0.0.1, and the checkpoint claim is a folder of
the run (`claims/<name>-checkpoints`) that every attempt shares. A failed
worker restarts the gang as on a cluster, and the next attempt resumes from
the latest checkpoint there.
"""

from __future__ import annotations

from dataworks.controllers.trainingjobs import TrainingJobController
from dataworks.local.objects import ObjectExecutor, Outcome
from dataworks.local.runs import RunDir
from dataworks.local.runtime import Hooks

__all__ = ["Outcome", "TrainingExecutor"]


class TrainingExecutor(ObjectExecutor):
    def __init__(
        self, run: RunDir, hooks: Hooks | None = None, environ: dict[str, str] | None = None
    ) -> None:
        super().__init__(run, TrainingJobController(), hooks, environ)
