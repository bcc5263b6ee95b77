"""The local kubelet resolves a container as a kubelet would, and LocalJob obeys the Job's rules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from dataworks.local import kubelet
from dataworks.local.jobs import JobRules


@pytest.mark.parametrize(
    ("text", "env", "out"),
    [
        pytest.param("$(A)", {"A": "1"}, "1", id="defined"),
        pytest.param("x-$(A)-$(B)", {"A": "1"}, "x-1-$(B)", id="undefined-left-as-written"),
        pytest.param("$A", {"A": "1"}, "$A", id="shell-syntax-is-not-expanded"),
        pytest.param("$(A)$(A)", {"A": "z"}, "zz", id="twice"),
    ],
)
def test_expand(text: str, env: dict[str, str], out: str) -> None:
    assert kubelet.expand(text, env) == out


@pytest.mark.parametrize(
    ("value", "out"),
    [
        pytest.param("/etc/dataworks/steps/a.json", "/run/steps/a.json", id="under-a-mount"),
        pytest.param("/etc/dataworks/steps", "/run/steps", id="the-mount-itself"),
        pytest.param("/etc/dataworks/stepsx/a", "/etc/dataworks/stepsx/a", id="a-sibling-is-not-under-it"),
        pytest.param("/etc/dataworks/steps/deep/b", "/run/deep-mount/b", id="the-longest-mount-wins"),
        pytest.param("relative/a", "relative/a", id="not-a-mount"),
        pytest.param("--in=/etc/dataworks/steps/a.json", "--in=/run/steps/a.json", id="an-option-value"),
        pytest.param("--in=/elsewhere/a", "--in=/elsewhere/a", id="an-option-value-not-a-mount"),
        pytest.param("x=/etc/dataworks/steps/a", "x=/etc/dataworks/steps/a", id="not-an-option"),
    ],
)
def test_translate(value: str, out: str) -> None:
    where = {"/etc/dataworks/steps": Path("/run/steps"), "/etc/dataworks/steps/deep": Path("/run/deep-mount")}
    assert kubelet.translate(value, where) == out


def test_env_is_resolved_like_a_kubelet(tmp_path: Path) -> None:
    sandbox = kubelet.Sandbox(tmp_path)
    sandbox.apply({"kind": "ConfigMap", "metadata": {"name": "cm"}, "data": {"K": "from-cm", "f.json": "{}"}})
    container: dict[str, Any] = {
        "envFrom": [{"configMapRef": {"name": "cm"}}, {"secretRef": {"name": "store-creds"}}],
        "env": [
            {"name": "A", "value": "a"},
            {"name": "B", "value": "$(A)-b"},
            {"name": "INDEX", "valueFrom": {"fieldRef": {"fieldPath": kubelet.COMPLETION_INDEX}}},
            {"name": "POD_NS", "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}},
            {"name": "KEY", "valueFrom": {"configMapKeyRef": {"name": "cm", "key": "K"}}},
            {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
            {"name": "ABSENT", "valueFrom": {"secretKeyRef": {"name": "s", "key": "u"}}},
            {"name": "FILE", "value": "/etc/cm/f.json"},
        ],
    }
    env = kubelet.container_env(
        container,
        index=3,
        indexed=True,
        pod_meta={"namespace": "local"},
        sandbox=sandbox,
        where={"/etc/cm": tmp_path / "configmaps" / "cm"},
        host={"TOKEN": "from-this-machine"},
    )
    assert env == {
        "K": "from-cm",
        "f.json": "{}",
        "JOB_COMPLETION_INDEX": "3",
        "A": "a",
        "B": "a-b",
        "INDEX": "3",
        "POD_NS": "local",
        "KEY": "from-cm",
        "TOKEN": "from-this-machine",
        "FILE": str(tmp_path / "configmaps" / "cm" / "f.json"),
    }
    assert (tmp_path / "configmaps" / "cm" / "f.json").read_text() == "{}"


def test_a_secret_volume_is_refused_with_what_to_do_instead(tmp_path: Path) -> None:
    pod = {"volumes": [{"name": "connections", "secret": {"secretName": "conns"}}]}
    container = {"volumeMounts": [{"name": "connections", "mountPath": "/etc/dataworks/connections"}]}
    with pytest.raises(kubelet.Unsupported, match="DATAWORKS_CONN_<NAME>"):
        kubelet.mounts(kubelet.Sandbox(tmp_path), pod, container, tmp_path / "pod")


def job(**spec: Any) -> dict[str, Any]:
    labels = {"dataworks.io/step": "s", "dataworks.io/attempt": "2"}
    return {"metadata": {"name": "p-s-a2", "labels": labels}, "spec": spec}


def on_exit(action: str, operator: str, values: list[int]) -> dict[str, Any]:
    return {
        "action": action,
        "onExitCodes": {"containerName": "step", "operator": operator, "values": values},
    }


DISRUPTION = {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget", "status": "True"}]}


@pytest.mark.parametrize(
    ("rules", "code", "action"),
    [
        pytest.param([], 1, "Count", id="no-rules-counts"),
        pytest.param([DISRUPTION], 1, "Count", id="pod-condition-rules-do-not-match-exit-codes"),
        pytest.param([DISRUPTION, on_exit("FailJob", "In", [3])], 3, "FailJob", id="no-retry-code"),
        pytest.param([on_exit("FailJob", "In", [3])], 4, "Count", id="other-code-counts"),
        pytest.param([on_exit("FailJob", "NotIn", [0, 75])], 75, "Count", id="retry-only-listed-retried"),
        pytest.param([on_exit("FailJob", "NotIn", [0, 75])], 1, "FailJob", id="retry-only-other-fails"),
        pytest.param([on_exit("FailIndex", "In", [3])], 3, "FailIndex", id="fan-out-fails-the-index"),
        pytest.param(
            [on_exit("Ignore", "In", [3]), on_exit("FailJob", "In", [3])], 3, "Ignore", id="first-match-wins"
        ),
    ],
)
def test_pod_failure_policy(rules: list[dict[str, Any]], code: int, action: str) -> None:
    assert JobRules.of(job(podFailurePolicy={"rules": rules})).on_exit(code) == action


def test_rules_come_from_the_manifest() -> None:
    plain = JobRules.of(job(backoffLimit=2, activeDeadlineSeconds=30))
    assert (plain.step, plain.attempt, plain.indexed, plain.completions, plain.retries, plain.deadline) == (
        "s",
        2,
        False,
        1,
        2,
        30,
    )
    fan = JobRules.of(job(completionMode="Indexed", completions=4, parallelism=4, backoffLimitPerIndex=1))
    assert (fan.indexed, fan.completions, fan.retries) == (True, 4, 1)
    assert JobRules.of(job()).retries == 6  # the Job API's default backoffLimit
