"""Which container logs are due for capture now (pure layer).

A container instance's log is read once, as soon as it has terminated: the
pod may be deleted right after its Job finishes (ttlSecondsAfterFinished: 0, a
CronJob's history limit, a user), and its log with it. A restarted
container's previous instance is read while the API still serves it (only
the one before the current). Init containers count like the others.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

# (pod uid, container name, instance): instance n is the container's (n+1)-th run.
SourceKey = tuple[str, str, int]


@dataclass(frozen=True)
class LogSource:
    pod: str
    namespace: str
    pod_uid: str
    container: str
    instance: int
    previous: bool  # read the instance before the current one (kubectl logs --previous)
    init: bool

    @property
    def key(self) -> SourceKey:
        return (self.pod_uid, self.container, self.instance)


def _statuses(pod: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    status = pod.get("status") or {}
    return [(cs, True) for cs in status.get("initContainerStatuses") or []] + [
        (cs, False) for cs in status.get("containerStatuses") or []
    ]


def due(pods: list[dict[str, Any]], done: set[SourceKey] | frozenset[SourceKey]) -> list[LogSource]:
    """Container instances that have terminated and whose logs are not yet read."""
    out: list[LogSource] = []
    for pod in pods:
        meta = pod.get("metadata") or {}
        for cs, init in _statuses(pod):
            restarts = int(cs.get("restartCount") or 0)
            found = [((cs.get("state") or {}).get("terminated"), restarts, False)]
            if restarts:
                found.append(((cs.get("lastState") or {}).get("terminated"), restarts - 1, True))
            for terminated, instance, previous in found:
                if not terminated:
                    continue
                source = LogSource(
                    pod=meta.get("name", ""),
                    namespace=meta.get("namespace", ""),
                    pod_uid=meta.get("uid", ""),
                    container=cs.get("name", ""),
                    instance=instance,
                    previous=previous,
                    init=init,
                )
                if source.key not in done:
                    out.append(source)
    return out


def running(pods: list[dict[str, Any]]) -> bool:
    """Whether any pod may still print: not Succeeded or Failed, and not being deleted."""
    return any(
        (p.get("status") or {}).get("phase") not in ("Succeeded", "Failed")
        and not (p.get("metadata") or {}).get("deletionTimestamp")
        for p in pods
    )
