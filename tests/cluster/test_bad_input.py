"""Bad input never creates a Job: the API server rejects it with the rule's
message, or the operator marks it InvalidSpec, while a valid pipeline runs on.
Unknown fields are refused by a create with fieldValidation=Strict (what
`dataworks run` and `kubectl apply` send), never dropped."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import ApiError, Client

from dataworks.kube import clients
from tests.builders.badinput import INVALID_SPEC, REJECTED, UNKNOWN_FIELDS
from tests.cluster.conftest import Cluster
from tests.cluster.pipelines import create, jobs, manifest, step, wait_phase

pytestmark = pytest.mark.usefixtures("operator")


def test_bad_input_matrix_while_a_valid_pipeline_runs(
    cluster: Cluster, client: Client, namespace: str
) -> None:
    strict = clients.sync_client(cluster.kubeconfig, field_validation="Strict")
    for name, steps, message in UNKNOWN_FIELDS:
        with pytest.raises(ApiError) as err:
            create(strict, namespace, manifest(name, steps))
        assert err.value.status.code == 400, name
        assert message in err.value.status.message, (name, err.value.status.message)
    strict.close()
    create(client, namespace, manifest("healthy", [step("s1", fate={"duration": "2s"}), step("s2", ["s1"])]))
    for name, steps, message in REJECTED:
        with pytest.raises(ApiError) as err:
            create(client, namespace, manifest(name, steps))
        assert err.value.status.code == 422, name
        assert message in err.value.status.message, (name, err.value.status.message)
    for name, steps, _ in INVALID_SPEC:
        create(client, namespace, manifest(name, steps))
    for name, _, message in INVALID_SPEC:
        st: dict[str, Any] = wait_phase(client, namespace, name, "Failed", timeout=30)
        valid = next(c for c in st["conditions"] if c["type"] == "Valid")
        assert (valid["status"], valid["reason"]) == ("False", "InvalidSpec"), name
        assert message in valid["message"], (name, valid["message"])
        assert jobs(client, namespace, name) == [], name
    assert wait_phase(client, namespace, "healthy", "Completed")["progress"] == "2/2"
