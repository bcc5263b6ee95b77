"""Bad input never creates a Job: the API server rejects it with the rule's
message, or the operator marks it InvalidSpec, while a valid pipeline runs on."""

from __future__ import annotations

from typing import Any

import pytest
from lightkube import ApiError, Client

from tests.builders.badinput import INVALID_SPEC, REJECTED
from tests.cluster.pipelines import create, jobs, manifest, step, wait_phase

pytestmark = pytest.mark.usefixtures("operator")


def test_bad_input_matrix_while_a_valid_pipeline_runs(client: Client, namespace: str) -> None:
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
