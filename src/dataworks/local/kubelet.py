"""The local kubelet (edge layer): runs the manifests `manifests/` builds for the cluster.

The local executor hands it the very Job, ConfigMap, Service and PVC dicts the
operator would create, and it plays the parts of the cluster that run them:

- a ConfigMap becomes files in a directory of the run, and a container's
  `mountPath` maps to that directory (paths in its command, args and env, alone
  or as an option's value, `--source=/data/raw`, are rewritten to it, since a
  process cannot mount at /etc without privileges);
- a PersistentVolumeClaim becomes a directory of the run, shared by every pod
  that mounts it; an emptyDir a fresh directory per pod;
- a headless Service's names resolve to 127.0.0.1 (`hosts`, and `resolve` for a variable
  that names one, such as a TrainingJob's worker 0);
- env is resolved as a kubelet does: `value`, `valueFrom` (`fieldRef` to the
  completion index, the pod's name and namespace; `configMapKeyRef`), `envFrom`
  ConfigMaps, `$(VAR)` expansion, and `JOB_COMPLETION_INDEX` for Indexed Jobs.
  There are no Secrets on this machine: a `secretKeyRef` or `secretRef` takes
  the variable from this machine's environment, which every process inherits;
- the worker image's entrypoints (`dataworks-worker`, and `dataworks` for a StreamingJob's
  consumers) run with this Python;
- the termination message file (`terminationMessagePath`, /dev/termination-log)
  is a file per pod and index (`termination`): a command that names the path
  writes there, and `DATAWORKS_TERMINATION_LOG` names it for our own programs.
  It becomes the message in the pod's status, as a kubelet reads it.

`LocalJob` (local/jobs.py) then applies the Job's own rules: completions,
Indexed mode, backoffLimit, backoffLimitPerIndex, podFailurePolicy and
activeDeadlineSeconds. No second translation of "step to process" exists.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

WORKER_ENTRYPOINT = "dataworks-worker"
CLI_ENTRYPOINT = "dataworks"
COMPLETION_INDEX = "metadata.annotations['batch.kubernetes.io/job-completion-index']"
_VAR = re.compile(r"\$\(([A-Za-z_][A-Za-z0-9_]*)\)")


_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")


class Unsupported(ValueError):
    """A manifest asks for something this machine cannot give (named in the message)."""


@dataclass
class Sandbox:
    """The objects a run has applied, and where their data lives on this machine."""

    root: Path
    places: dict[str, Path] = field(default_factory=dict)  # ConfigMap name -> its directory
    config_maps: dict[str, dict[str, str]] = field(default_factory=dict)
    services: set[str] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)

    def apply(self, obj: dict[str, Any]) -> None:
        """Make one object real on this machine."""
        kind, name = obj["kind"], obj["metadata"]["name"]
        if kind == "ConfigMap":
            data = {str(k): str(v) for k, v in (obj.get("data") or {}).items()}
            self.config_maps[name] = data
            where = self.config_map_dir(name)
            where.mkdir(parents=True, exist_ok=True)
            for key, text in data.items():
                (where / key).write_text(text)
        elif kind == "Service":
            self.services.add(name)
        elif kind == "PersistentVolumeClaim":
            self.claims.add(name)
            self.claim_dir(name).mkdir(parents=True, exist_ok=True)
        else:
            raise Unsupported(f"the local kubelet applies ConfigMaps, Services and PVCs, not a {kind}")

    def config_map_dir(self, name: str) -> Path:
        return self.places.get(name) or self.root / "configmaps" / name

    def claim_dir(self, name: str) -> Path:
        return self.root / "claims" / name

    def resolve(self, value: str) -> str:
        """A Service's qualified DNS name (`svc.ns.svc...`, or a pod's `host.svc[.ns.svc...]`) as
        127.0.0.1; any other value unchanged (a bare word, e.g. a model named like the Service)."""
        labels = value.split(".")
        if len(labels) < 2 or not all(_DNS_LABEL.fullmatch(part) for part in labels):
            return value
        if labels[1] in self.services or (labels[0] in self.services and "svc" in labels[1:]):
            return "127.0.0.1"
        return value

    def hosts(self) -> dict[str, str]:
        """Every Service name resolves to this machine."""
        return dict.fromkeys(sorted(self.services), "127.0.0.1")


@dataclass(frozen=True)
class Container:
    """How one container of a Job's pod runs here: argv and env for a completion index."""

    argv: Callable[[int], list[str]]
    env: Callable[[int], dict[str, str]]
    mounts: dict[str, Path]
    termination: Callable[[int], Path]  # the file that stands in for the termination message's


TERMINATION_MESSAGE_PATH = "/dev/termination-log"  # the API's default terminationMessagePath


def _volume_dir(sandbox: Sandbox, volume: dict[str, Any], pod_dir: Path) -> Path:
    if "configMap" in volume:
        name = str(volume["configMap"]["name"])
        if name not in sandbox.config_maps:
            raise Unsupported(f"volume {volume['name']}: ConfigMap {name} was not applied")
        return sandbox.config_map_dir(name)
    if "persistentVolumeClaim" in volume:
        claim = str(volume["persistentVolumeClaim"]["claimName"])
        where = sandbox.claim_dir(claim)
        where.mkdir(parents=True, exist_ok=True)
        return where
    if "emptyDir" in volume:
        where = pod_dir / "volumes" / str(volume["name"])
        where.mkdir(parents=True, exist_ok=True)
        return where
    if "secret" in volume:
        raise Unsupported(
            f"volume {volume['name']}: there are no Secrets on this machine; "
            "give connections as DATAWORKS_CONN_<NAME> variables or a DATAWORKS_CONNECTIONS file"
        )
    raise Unsupported(
        f"volume {volume['name']}: only configMap, persistentVolumeClaim and emptyDir run locally"
    )


def mounts(
    sandbox: Sandbox, pod: dict[str, Any], container: dict[str, Any], pod_dir: Path
) -> dict[str, Path]:
    """mountPath -> the directory that stands in for it."""
    volumes = {v["name"]: v for v in pod.get("volumes") or []}
    out: dict[str, Path] = {}
    for m in container.get("volumeMounts") or []:
        out[m["mountPath"]] = _volume_dir(sandbox, volumes[m["name"]], pod_dir)
    return out


def translate(value: str, where: dict[str, Path]) -> str:
    """A path inside the pod as the path on this machine (the longest matching mountPath), alone
    or as the value of an option (`--source=/data/raw`)."""
    option, sep, rest = value.partition("=")
    if sep and option.startswith("-") and rest.startswith("/"):
        return f"{option}={_translate_path(rest, where)}"
    return _translate_path(value, where)


def _translate_path(value: str, where: dict[str, Path]) -> str:
    for path in sorted(where, key=len, reverse=True):
        if value == path or value.startswith(path.rstrip("/") + "/"):
            return str(where[path]) + value[len(path.rstrip("/")) :]
    return value


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion: defined variables are replaced, others left as written."""
    return _VAR.sub(lambda m: env.get(m.group(1), m.group(0)), text)


def _field(path: str, index: int, meta: dict[str, Any]) -> str:
    if path == COMPLETION_INDEX:
        return str(index)
    if path == "metadata.name":
        return str(meta.get("name", ""))
    if path == "metadata.namespace":
        return str(meta.get("namespace", ""))
    if path == "status.podIP":
        return "127.0.0.1"
    match = re.fullmatch(r"metadata\.(labels|annotations)\['([^']+)'\]", path)
    if match:
        return str((meta.get(match.group(1)) or {}).get(match.group(2), ""))
    raise Unsupported(f"fieldRef {path} has no local value")


def container_env(
    container: dict[str, Any],
    *,
    index: int,
    indexed: bool,
    pod_meta: dict[str, Any],
    sandbox: Sandbox,
    where: dict[str, Path],
    host: dict[str, str],
) -> dict[str, str]:
    """The container's environment as a kubelet resolves it (only what the manifest sets)."""
    env: dict[str, str] = {}
    for source in container.get("envFrom") or []:
        if "configMapRef" in source:
            env.update(sandbox.config_maps.get(source["configMapRef"]["name"], {}))
        # secretRef: no Secrets here; the variables come from this machine's environment.
    if indexed:
        env["JOB_COMPLETION_INDEX"] = str(index)
    for var in container.get("env") or []:
        name = var["name"]
        if "value" in var:
            env[name] = sandbox.resolve(translate(expand(str(var["value"]), env), where))
            continue
        ref = var.get("valueFrom") or {}
        if "fieldRef" in ref:
            env[name] = _field(ref["fieldRef"]["fieldPath"], index, pod_meta)
        elif "configMapKeyRef" in ref:
            key = ref["configMapKeyRef"]
            env[name] = sandbox.config_maps.get(key["name"], {}).get(key["key"], "")
        elif "secretKeyRef" in ref and name in host:
            env[name] = host[name]
    return env


def container(  # noqa: PLR0917 (the pod's parts, in the order a kubelet meets them)
    job: dict[str, Any],
    sandbox: Sandbox,
    pod_dir: Path,
    host: dict[str, str],
    extra: dict[str, str],
    pod_name: str | None = None,
) -> Container:
    """How the one container of a Job's (or a Deployment's) pod template runs on this machine;
    `pod_name` is the pod's, for the downward API."""
    template = job["spec"]["template"]
    pod = template.get("spec") or {}
    (spec,) = pod["containers"]
    indexed = job["spec"].get("completionMode") == "Indexed"
    where = mounts(sandbox, pod, spec, pod_dir)
    meta = {**(template.get("metadata") or {}), "namespace": job["metadata"].get("namespace", "")}
    if pod_name is not None:
        meta["name"] = pod_name

    message_path = str(spec.get("terminationMessagePath") or TERMINATION_MESSAGE_PATH)

    def termination(index: int) -> Path:
        return pod_dir / f"termination-{index}"

    def env(index: int) -> dict[str, str]:
        own = container_env(
            spec, index=index, indexed=indexed, pod_meta=meta, sandbox=sandbox, where=where, host=host
        )
        # The worker and dataworks.training write their message where this names.
        return {**host, **extra, **own, "DATAWORKS_TERMINATION_LOG": str(termination(index))}

    def argv(index: int) -> list[str]:
        resolved = env(index)
        # A script that writes the termination message (`echo '{...}' > /dev/termination-log`)
        # writes this index's file instead.
        words = [
            translate(expand(str(w), resolved), where).replace(message_path, str(termination(index)))
            for w in [*(spec.get("command") or []), *(spec.get("args") or [])]
        ]
        if words[:1] == [WORKER_ENTRYPOINT]:
            words = [sys.executable, "-m", "dataworks.worker", *words[1:]]
        elif words[:1] == [CLI_ENTRYPOINT]:  # a StreamingJob's consumer: `dataworks consume`
            words = [sys.executable, "-m", "dataworks.cli.main", *words[1:]]
        return words

    pod_dir.mkdir(parents=True, exist_ok=True)
    return Container(argv=argv, env=env, mounts=where, termination=termination)


def save(path: Path, obj: dict[str, Any]) -> None:
    """Keep an applied manifest in the run (what `dataworks run --dry-run` would print)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=1, sort_keys=True))
