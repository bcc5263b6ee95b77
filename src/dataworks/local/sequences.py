"""A SequentialJob run on this machine (edge layer), by the operator's own controller.

It hosts the SequentialJob controller (controllers/sequentialjobs.py, the one
the operator runs) in the local runtime (local/runtime.py): each step's Job is
the manifest the cluster would get, run by the local kubelet. A
PersistentVolumeClaim the template mounts becomes a folder of the run
(`claims/<claim>`), shared by every step; a Secret's key comes from this
machine's environment, as for pipelines. Ctrl-C stops the running step's
processes and leaves the status as it was: running the run again
(`dataworks retry --local`) resumes it from that step.
"""

from __future__ import annotations

from dataworks.controllers.sequentialjobs import SequentialJobController
from dataworks.local.objects import ObjectExecutor, Outcome
from dataworks.local.runs import RunDir
from dataworks.local.runtime import Hooks

__all__ = ["Outcome", "SequenceExecutor"]


class SequenceExecutor(ObjectExecutor):
    """Runs (or resumes, or re-runs after `retry`) one SequentialJob run directory to its end."""

    def __init__(
        self, run: RunDir, hooks: Hooks | None = None, environ: dict[str, str] | None = None
    ) -> None:
        super().__init__(run, SequentialJobController(), hooks, environ)
