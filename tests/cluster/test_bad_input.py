"""Bad input never creates a Job: the API server rejects it with the rule's
message, or the operator marks it InvalidSpec, while a valid pipeline runs on.
Unknown fields are refused by a create with fieldValidation=Strict (what
`pipeline-ctl run` and `kubectl apply` send), never dropped."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import ApiError, Client

from dataworks.kube import clients
from tests.cluster.conftest import Cluster
from tests.cluster.pipelines import create, jobs, manifest, step, wait_phase

pytestmark = pytest.mark.usefixtures("operator")

REJECTED = [
    ("duplicate-names", [step("a"), step("a")], 'Duplicate value: {"name":"a"}'),
    ("unknown-type", [{"name": "a", "type": "spark"}], 'Unsupported value: "spark"'),
    ("long-name", [step("x" * 300)], "spec.steps[0].name: Too long"),
    ("zero-steps", [], "spec.steps: Invalid value: 0: spec.steps in body should have at least 1 items"),
    ("self-dependency", [step("a", ["a"])], "a step cannot depend on itself"),
    ("config-not-object", [{**step("a"), "config": "text"}], 'spec.steps[0].config: Invalid value: "string"'),
    ("zero-parallelism", [step("a", parallelism=0)], "spec.steps[0].parallelism: Invalid value: 0"),
]

# Refused with 400 (strict decoding) when created with fieldValidation=Strict; dropped otherwise.
UNKNOWN_FIELDS = [
    (
        "misspelt-depends-on",
        [step("a"), {**step("b"), "dependOn": ["a"]}],
        'strict decoding error: unknown field "spec.steps[1].dependOn"',
    ),
    (  # removed from the API: retry rules go by exit code (docs/decisions.md)
        "no-retry-reasons",
        [step("a", retry={"noRetryReasons": ["OOMKilled"]})],
        'strict decoding error: unknown field "spec.steps[0].retry.noRetryReasons"',
    ),
]

INVALID_SPEC = [
    ("cycle", [step("a", ["b"]), step("b", ["a"])], "forms a cycle: a -> b -> a"),
    ("unknown-dependency", [step("a", ["ghost"])], "step 'a': dependsOn: names 'ghost'"),
    (
        "huge-fan-out",
        [{"name": "f", "type": "fan-out", "config": {"parallelism": 100000}}],
        "step 'f': config.parallelism: must be between 1 and 1000, got 100000",
    ),
    (
        "fan-out-zero",
        [{"name": "f", "type": "fan-out", "config": {"parallelism": 0}}],
        "step 'f': config.parallelism: must be between 1 and 1000, got 0",
    ),
    (
        "bad-quantity",
        [step("a", resources={"cpu": "abc"})],
        "step 'a': resources.requests.cpu: \"abc\" is not a Kubernetes quantity",
    ),
    (
        "transform-without-sql",
        [{"name": "t", "type": "transform", "config": {}}],
        "step 't': config.sql: is required for a transform step",
    ),
    (  # refused before its upstream step runs, by the rules the worker itself applies
        "unknown-quality-rule",
        [
            step("up"),
            {
                "name": "q",
                "type": "quality-check",
                "dependsOn": ["up"],
                "config": {"rules": [{"no_such_rule": ["x"]}]},
            },
        ],
        "step 'q': config.rules[0]: must name exactly one rule of not_null, unique",
    ),
]


def test_bad_input_matrix_while_a_valid_pipeline_runs(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    create(client, namespace, manifest("healthy", [step("s1", fate={"duration": "2s"}), step("s2", ["s1"])]))
    for name, steps, message in REJECTED:
        with pytest.raises(ApiError) as err:
            create(client, namespace, manifest(name, steps))
        assert err.value.status.code == 422, name
        assert message in err.value.status.message, (name, err.value.status.message)
    strict = clients.sync_client(cluster.kubeconfig, field_validation="Strict")
    for name, steps, message in UNKNOWN_FIELDS:
        with pytest.raises(ApiError) as err:
            create(strict, namespace, manifest(name, steps))
        assert err.value.status.code == 400, name
        assert message in err.value.status.message, (name, err.value.status.message)
    strict.close()
    for name, steps, _ in INVALID_SPEC:
        create(client, namespace, manifest(name, steps))
    for name, _, message in INVALID_SPEC:
        st: dict[str, Any] = wait_phase(client, namespace, name, "Failed", timeout=30)
        valid = next(c for c in st["conditions"] if c["type"] == "Valid")
        assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec"), name
        assert message in valid["message"], (name, valid["message"])
        assert jobs(client, namespace, name) == [], name
    assert wait_phase(client, namespace, "healthy", "Completed")["progress"] == "2/2"
