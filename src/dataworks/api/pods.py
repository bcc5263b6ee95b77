"""Kubernetes core/v1 pod types a spec may embed (pure layer): Container and PodTemplate.

These follow the Kubernetes field names exactly, so a container or a pod
template copied from a Deployment or a Job fits. The fields the operator acts
on (names, images, resources, volume mounts, volumes, labels) are typed and
described; nested Kubernetes objects (probes, security contexts, affinity,
volume sources) are free-form and checked by the API server when the child Job
is created. A field that is not a Kubernetes field is an error (a strict
`kubectl apply` names it), never dropped.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, WithJsonSchema

from dataworks.api.common import DNS1123_LABEL
from dataworks.api.meta import Model

# A resource quantity: "500m", "1Gi", or a bare integer (`cpu: 2`), as Kubernetes accepts.
Quantity = Annotated[str | int, WithJsonSchema({"x-kubernetes-int-or-string": True})]
FreeForm = dict[str, Any]


class EnvVar(Model):
    """An environment variable of a container."""

    name: str = Field(min_length=1, description="Variable name.")
    value: str | None = Field(None, description="Literal value; $(VAR) expands earlier variables.")
    value_from: FreeForm | None = Field(
        None, description="Take the value from a Secret, ConfigMap, or field of the pod (one source)."
    )


class ResourceRequirements(Model):
    """Compute resources of a container, as in any Kubernetes container."""

    requests: dict[str, Quantity] | None = Field(None, description='Requests, e.g. {cpu: "500m"}.')
    limits: dict[str, Quantity] | None = Field(None, description='Limits, e.g. {memory: "1Gi"}.')
    claims: list[FreeForm] | None = Field(None, description="Dynamic resource claims the container uses.")


class VolumeMount(Model):
    """A volume of the pod template mounted into the container."""

    name: str = Field(min_length=1, description="The name of a volume in spec.template.spec.volumes.")
    mount_path: str = Field(min_length=1, description="Where the volume appears in the container.")
    read_only: bool | None = Field(None, description="Mount read-only.")
    sub_path: str | None = Field(None, description="Mount this path inside the volume instead of its root.")
    sub_path_expr: str | None = Field(None, description="Like subPath, with $(VAR) expanded.")
    mount_propagation: str | None = Field(None, description="How mounts propagate (None by default).")
    recursive_read_only: str | None = Field(None, description="Disabled, IfPossible or Enabled.")


class Container(Model):
    """A Kubernetes container (core/v1 Container)."""

    name: str = Field(
        min_length=1,
        max_length=63,
        pattern=DNS1123_LABEL,
        description="Container name: lowercase letters, digits and '-'; unique in the list.",
    )
    image: str = Field(min_length=1, description="Container image, e.g. registry/tool:v1.")
    command: list[str] | None = Field(None, description="Entrypoint (the image's ENTRYPOINT if unset).")
    args: list[str] | None = Field(None, description="Arguments (the image's CMD if unset).")
    working_dir: str | None = Field(None, description="Working directory.")
    env: list[EnvVar] | None = Field(None, description="Environment variables.")
    env_from: list[FreeForm] | None = Field(None, description="ConfigMaps or Secrets to load as variables.")
    resources: ResourceRequirements | None = Field(None, description="Compute resources.")
    volume_mounts: list[VolumeMount] | None = Field(None, description="Volumes of the pod template to mount.")
    volume_devices: list[FreeForm] | None = Field(None, description="Block devices to map.")
    ports: list[FreeForm] | None = Field(None, description="Ports the container exposes.")
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] | None = Field(
        None, description="When to pull the image."
    )
    security_context: FreeForm | None = Field(
        None,
        description="Security settings, over the restricted defaults (non-root, no privilege escalation).",
    )
    liveness_probe: FreeForm | None = Field(None, description="Liveness probe.")
    readiness_probe: FreeForm | None = Field(None, description="Readiness probe.")
    startup_probe: FreeForm | None = Field(None, description="Startup probe.")
    lifecycle: FreeForm | None = Field(None, description="postStart and preStop hooks.")
    termination_message_path: str | None = Field(
        None, description="File whose contents become the termination message (/dev/termination-log)."
    )
    termination_message_policy: Literal["File", "FallbackToLogsOnError"] | None = Field(
        None, description="File, or FallbackToLogsOnError (the default here): the log's tail when it fails."
    )
    resize_policy: list[FreeForm] | None = Field(None, description="How resources may be resized.")
    restart_policy: str | None = Field(None, description="Per-container restart policy (sidecars).")
    restart_policy_rules: list[FreeForm] | None = Field(None, description="Per-container restart rules.")
    stdin: bool | None = Field(None, description="Allocate a stdin buffer.")
    stdin_once: bool | None = Field(None, description="Close stdin after the first attach.")
    tty: bool | None = Field(None, description="Allocate a TTY.")


class Volume(Model):
    """A pod volume: a name and one volume source (persistentVolumeClaim, configMap, emptyDir...)."""

    model_config = ConfigDict(extra="allow")

    name: str = Field(min_length=1, max_length=63, description="Volume name, as volumeMounts refer to it.")


class TemplateMeta(Model):
    """Labels and annotations of every step's pods."""

    labels: dict[str, str] | None = Field(None, description="Labels of every step's pods (and Jobs).")
    annotations: dict[str, str] | None = Field(None, description="Annotations of every step's pods.")


class PodSpec(Model):
    """Pod settings every step shares (core/v1 PodSpec without the containers)."""

    volumes: list[Volume] | None = Field(None, description="Volumes the containers may mount.")
    node_selector: dict[str, str] | None = Field(None, description="Nodes the pods may run on.")
    tolerations: list[FreeForm] | None = Field(None, description="Taints the pods tolerate.")
    affinity: FreeForm | None = Field(None, description="Node and pod affinity.")
    service_account_name: str | None = Field(None, description="ServiceAccount of the pods.")
    service_account: str | None = Field(None, description="Deprecated alias of serviceAccountName.")
    automount_service_account_token: bool | None = Field(None, description="Mount the API token.")
    security_context: FreeForm | None = Field(
        None, description="Pod security settings, over the restricted defaults (runAsNonRoot, seccomp)."
    )
    image_pull_secrets: list[FreeForm] | None = Field(None, description="Secrets for pulling images.")
    init_containers: list[FreeForm] | None = Field(None, description="Run before each step's container.")
    restart_policy: Literal["Never", "OnFailure"] | None = Field(
        None, description="Never (default: a failed pod is retried as a new pod) or OnFailure."
    )
    priority_class_name: str | None = Field(None, description="Priority class of the pods.")
    priority: int | None = Field(None, description="Priority (set from priorityClassName).")
    preemption_policy: str | None = Field(None, description="PreemptLowerPriority or Never.")
    runtime_class_name: str | None = Field(None, description="Runtime class of the pods.")
    scheduler_name: str | None = Field(None, description="Scheduler of the pods.")
    scheduling_gates: list[FreeForm] | None = Field(None, description="Gates that hold scheduling.")
    topology_spread_constraints: list[FreeForm] | None = Field(None, description="How pods spread.")
    termination_grace_period_seconds: int | None = Field(None, ge=0, description="Grace period on stop.")
    active_deadline_seconds: int | None = Field(None, ge=1, description="Deadline of each pod.")
    dns_policy: str | None = Field(None, description="DNS policy.")
    dns_config: FreeForm | None = Field(None, description="DNS settings.")
    host_aliases: list[FreeForm] | None = Field(None, description="Extra /etc/hosts entries.")
    hostname: str | None = Field(None, description="Pod hostname.")
    hostname_override: str | None = Field(None, description="Hostname override.")
    subdomain: str | None = Field(None, description="Pod subdomain.")
    set_hostname_as_fqdn: bool | None = Field(None, description="Set the hostname as the FQDN.")
    enable_service_links: bool | None = Field(None, description="Inject Service variables.")
    share_process_namespace: bool | None = Field(None, description="Share one process namespace.")
    host_network: bool | None = Field(None, description="Use the node's network.")
    host_pid: bool | None = Field(None, description="Use the node's PID namespace.")
    host_ipc: bool | None = Field(None, description="Use the node's IPC namespace.")
    host_users: bool | None = Field(None, description="Use the node's user namespace.")
    node_name: str | None = Field(None, description="Run on this node, bypassing the scheduler.")
    os: FreeForm | None = Field(None, description="The pods' operating system.")
    overhead: dict[str, Quantity] | None = Field(None, description="Pod overhead.")
    readiness_gates: list[FreeForm] | None = Field(None, description="Extra readiness conditions.")
    resource_claims: list[FreeForm] | None = Field(None, description="Dynamic resource claims.")
    resources: FreeForm | None = Field(None, description="Pod-level resources.")
    ephemeral_containers: list[FreeForm] | None = Field(None, description="Not allowed in a template.")
    containers: list[FreeForm] | None = Field(None, description="Not allowed: list steps in spec.containers.")

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.containers)",
            "message": "the steps are spec.containers; the template holds only the pod settings they share",
            "fieldPath": ".containers",
        },
        {
            "rule": "!has(self.ephemeralContainers)",
            "message": "ephemeral containers cannot be part of a pod template",
            "fieldPath": ".ephemeralContainers",
        },
    ]


class PodTemplate(Model):
    """A pod template whose settings every step's pod shares (core/v1 PodTemplateSpec)."""

    metadata: TemplateMeta | None = Field(None, description="Labels and annotations of the pods.")
    spec: PodSpec | None = Field(None, description="Pod settings: volumes, nodeSelector, tolerations, ...")
