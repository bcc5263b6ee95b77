"""Builders for restricted-compliant pod templates used by cluster tests."""

from __future__ import annotations

from lightkube.models.core_v1 import (
    Capabilities,
    Container,
    PodSecurityContext,
    PodSpec,
    PodTemplateSpec,
    SeccompProfile,
    SecurityContext,
)
from lightkube.models.meta_v1 import ObjectMeta

FATE = "fate.testcluster.dataworks.io/"


def restricted_container(name: str = "main", image: str = "busybox:1.36") -> Container:
    return Container(
        name=name,
        image=image,
        command=["true"],
        securityContext=SecurityContext(
            allowPrivilegeEscalation=False,
            capabilities=Capabilities(drop=["ALL"]),
            runAsNonRoot=True,
            seccompProfile=SeccompProfile(type="RuntimeDefault"),
        ),
    )


def restricted_spec(**overrides: object) -> PodSpec:
    spec = PodSpec(
        restartPolicy="Never",
        containers=[restricted_container()],
        securityContext=PodSecurityContext(
            runAsNonRoot=True, runAsUser=1000, seccompProfile=SeccompProfile(type="RuntimeDefault")
        ),
    )
    for k, v in overrides.items():
        setattr(spec, k, v)
    return spec


def template(fate: dict[str, str] | None = None, **overrides: object) -> PodTemplateSpec:
    """A pod template whose fate (see test/cluster/README.md) is given by keys without prefix."""
    annotations = {FATE + k: v for k, v in (fate or {}).items()}
    return PodTemplateSpec(metadata=ObjectMeta(annotations=annotations), spec=restricted_spec(**overrides))
