"""Lightkube resources for every registered kind and every child kind (I/O edge).

`of(info)` gives the generic namespaced resource of a registered kind
(creating it registers it, so `lightkube.codecs.from_dict` can load its
manifests); `child(kind)` the built-in resource of a child kind a controller
may own.
"""

from __future__ import annotations

from typing import Any

from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.apps_v1 import Deployment
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import ConfigMap, PersistentVolumeClaim, Pod, Service

from dataworks.api import kinds
from dataworks.api import pipeline as api
from dataworks.api.meta import GROUP, KindInfo

CHILD_KINDS: dict[str, Any] = {
    "Job": Job,
    "ConfigMap": ConfigMap,
    "Service": Service,
    "PersistentVolumeClaim": PersistentVolumeClaim,
    "Deployment": Deployment,
    "Pod": Pod,
}

_made: dict[str, Any] = {}


def of(info: KindInfo) -> Any:
    """The lightkube resource of a registered kind (made once per kind)."""
    if info.group != GROUP:
        return CHILD_KINDS[info.kind]  # a built-in kind (the handler's Job)
    made = _made.get(info.crd_name)
    if made is None:
        made = create_namespaced_resource(info.group, info.version, info.kind, info.plural)
        _made[info.crd_name] = made
    return made


def child(kind: str) -> Any:
    """The lightkube resource of a child kind; KeyError names the kinds a controller may own."""
    try:
        return CHILD_KINDS[kind]
    except KeyError:
        raise KeyError(f"{kind} is not a child kind; one of {', '.join(CHILD_KINDS)}") from None


def register_all(registry: kinds.Registry | None = None) -> None:
    """Make every registered kind loadable by `codecs.from_dict`."""
    for info in registry or kinds.default():
        of(info)


Pipeline = of(api.INFO)
# A ScheduledPipeline's runs are Pipelines: a child kind too.
CHILD_KINDS["Pipeline"] = Pipeline
