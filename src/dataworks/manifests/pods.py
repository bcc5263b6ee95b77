"""Restricted pod defaults for the pods of any kind (pure layer).

Every pod dataworks creates passes the restricted Pod Security Standard:
non-root (uid and gid 65532 unless the owner's template says otherwise), no
privilege escalation, every capability dropped, the RuntimeDefault seccomp
profile. `restricted_pod` and `restricted_container` return fresh dicts; a
kind that lets users set a security context merges theirs over them.
"""

from __future__ import annotations

from typing import Any

NON_ROOT = 65532


def restricted_pod() -> dict[str, Any]:
    """The pod-level securityContext."""
    return {
        "runAsNonRoot": True,
        "runAsUser": NON_ROOT,
        "runAsGroup": NON_ROOT,
        "fsGroup": NON_ROOT,  # mounted Secrets and volumes are readable by the pod's group
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def restricted_container() -> dict[str, Any]:
    """A container's securityContext."""
    return {
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def over(defaults: dict[str, Any], given: dict[str, Any] | None) -> dict[str, Any]:
    """`given` merged over `defaults`, one level deep for nested objects (capabilities, seccomp)."""
    out = dict(defaults)
    for key, value in (given or {}).items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **value}
        else:
            out[key] = value
    return out
