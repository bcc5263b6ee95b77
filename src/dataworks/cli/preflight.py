"""Checks `pipeline-ctl run` makes against the cluster before it creates a Pipeline (CLI edge).

Validation cannot know what is in the namespace. A connections Secret that does
not exist leaves every built-in step's pod waiting in ContainerCreating, and a
connection missing from it fails the step only when it runs, maybe hours in.
The operator may not read Secrets, so the CLI checks them with the user's own
credentials: a missing Secret or key is an error before anything is created; a
Secret the user may not read is a warning, and the run goes on.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dataworks.core.pipelines import steps as core_steps
from dataworks.core.pipelines.validation import Validated


@dataclass
class Findings:
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)


def needed(validated: Validated) -> dict[str, list[str]]:
    """connection name -> the built-in steps that name it."""
    out: dict[str, list[str]] = {}
    for step in validated.steps:
        for name in core_steps.connections_named(step):
            out.setdefault(name, []).append(step.name)
    return out


def check_connections(
    pipeline: str, namespace: str, validated: Validated, secret_keys: set[str] | None, readable: bool = True
) -> Findings:
    """What is wrong with the pipeline's connections Secret. `secret_keys` is None when the
    Secret does not exist; `readable` False when the user may not read it."""
    found = Findings()
    wanted = needed(validated)
    secret = validated.spec.connections_secret
    if not secret:
        if wanted:
            uses = "; ".join(f"{name!r} (step {', '.join(by)})" for name, by in sorted(wanted.items()))
            found.warnings.append(
                f"pipeline {pipeline}: steps name connections {uses}, but spec.connectionsSecret is not "
                "set; on a cluster built-in steps find their connections only in that Secret"
            )
        return found
    if all(step.type == "container" for step in validated.steps):
        return found  # the Secret is mounted into built-in steps only
    example = min(wanted, default="NAME")
    if not readable:
        found.warnings.append(
            f"pipeline {pipeline}: cannot check spec.connectionsSecret {secret!r}: "
            f"you may not read Secrets in namespace {namespace}"
        )
    elif secret_keys is None:
        found.errors.append(
            f"pipeline {pipeline}: spec.connectionsSecret: Secret {secret!r} not found in namespace "
            f"{namespace}; its built-in steps' pods would wait for it; create it with one key per "
            f"connection, such as: kubectl create secret generic {secret} -n {namespace} "
            f"--from-literal={example}=URI"
        )
    else:
        for name, by in sorted(wanted.items()):
            if not secret_keys & set(core_steps.connection_keys(name)):
                keys = ", ".join(sorted(secret_keys)) or "none"
                found.errors.append(
                    f"pipeline {pipeline}: step {', '.join(by)}: connection {name!r} is not a key of "
                    f"Secret {secret!r} (its keys: {keys}); add it: kubectl patch secret {secret} "
                    f'-n {namespace} --type merge -p \'{{"stringData": {{"{name}": "URI"}}}}\''
                )
    return found


def secret_keys(cluster: Any, name: str) -> tuple[set[str] | None, bool]:
    """(the Secret's keys or None if it does not exist, whether the user may read it)."""
    from lightkube.resources.core_v1 import Secret

    from dataworks.kube import errors

    try:
        with errors.typed():
            secret = cluster.client.get(Secret, name, namespace=cluster.namespace)
    except errors.NotFound:
        return None, True
    except errors.Forbidden:
        return None, False
    return set(secret.data or {}) | set(secret.stringData or {}), True


def check(cluster: Any, checked: list[tuple[dict[str, Any], Validated]], fallback_name: str) -> Findings:
    """Every finding for the pipelines about to be created in the cluster's namespace."""
    found = Findings()
    for original, validated in checked:
        name = (original.get("metadata") or {}).get("name") or fallback_name
        secret = validated.spec.connections_secret
        keys, readable = (None, True)
        if secret:
            keys, readable = cluster.call("get secrets", secret_keys, cluster, secret)
        one = check_connections(name, cluster.namespace, validated, keys, readable)
        found.errors += one.errors
        found.warnings += one.warnings
    return found
