"""PipelineTemplates on the real control plane: the seed's example applies as written and is
expanded by the operator; a templated pipeline runs, and keeps the expansion it started with when
the template changes; bad parameters and templates are refused naming the parameter or field."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from lightkube import ApiError, Client, codecs
from lightkube.types import PatchType

from dataworks.api import pipelinetemplate as tapi
from dataworks.kube import resources
from tests.cluster.conftest import Cluster
from tests.cluster.pipelines import create, jobs, step, wait_phase

pytestmark = pytest.mark.usefixtures("operator")

PipelineTemplate = resources.of(tapi.INFO)
CTL = str(Path(sys.executable).parent / "dataworks")
SEED = Path(__file__).resolve().parents[2] / "examples" / "seed" / "standard-etl.yaml"


def template(name: str = "nightly", **spec: Any) -> dict[str, Any]:
    body = {
        "parameters": [
            {"name": "region", "type": "enum", "values": ["eu", "us"], "required": True},
            {"name": "workers", "type": "integer", "default": 2},
            {"name": "dry_run", "type": "boolean", "default": False},
        ],
        "steps": [
            step("extract-{{.region}}"),
            step(
                "score-{{.region}}",
                ["extract-{{.region}}"],
                parallelism=None,
                args=["--dry-run={{.dry_run}}"],
            ),
        ],
    }
    body["steps"][1].update(type="container", image="busybox:1.36")
    body.update(spec)
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "PipelineTemplate",
        "metadata": {"name": name},
        "spec": body,
    }


def templated(name: str, template_name: str = "nightly", **parameters: Any) -> dict[str, Any]:
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "Pipeline",
        "metadata": {"name": name},
        "spec": {"template": template_name, "parameters": parameters},
    }


def test_the_seeds_template_example_applies_as_written_and_is_expanded(
    cluster: Cluster, namespace: str
) -> None:
    out = cluster.kubectl("apply", "-n", namespace, "-f", str(SEED), check=False)
    assert out.returncode == 0, out.stderr
    assert "pipelinetemplate.dataworks.io/standard-etl created" in out.stdout
    st = wait_phase(cluster.client, namespace, "salesforce-daily-sync", "Failed", "Completed", timeout=30)
    expansion = st["template"]
    assert expansion["name"] == "standard-etl"
    assert expansion["parameters"] == {
        "source_system": "salesforce",
        "target_date": "2024-01-15",
        "parallelism": 10,
    }
    assert [s["name"] for s in expansion["steps"]] == [
        "extract-salesforce",
        "validate-data",
        "load-warehouse",
    ]
    # The seed's steps are a sketch: two of them say what to run nowhere, which the operator names.
    assert st["phase"] == "Failed"
    assert "step 'validate-data': config.sql" in st["message"], st["message"]
    assert "step 'load-warehouse': config.sql" in st["message"], st["message"]
    assert jobs(cluster.client, namespace, "salesforce-daily-sync") == []


def test_a_templated_pipeline_runs_and_keeps_its_expansion_when_the_template_changes(
    cluster: Cluster, namespace: str
) -> None:
    client, kubeconfig = cluster.client, cluster.kubeconfig
    client.create(codecs.from_dict(template()), namespace=namespace)
    create(client, namespace, templated("eu-run", region="eu", dry_run="true"))
    st = wait_phase(client, namespace, "eu-run", "Running", "Completed", "Failed", timeout=30)
    assert st["phase"] == "Running"
    assert st["template"]["parameters"] == {"region": "eu", "workers": 2, "dry_run": True}
    # An edit of the template while the pipeline runs changes nothing in it.
    client.patch(
        PipelineTemplate,
        "nightly",
        {"spec": {"steps": [step("changed")]}},
        namespace=namespace,
        patch_type=PatchType.MERGE,
    )
    st = wait_phase(client, namespace, "eu-run", "Completed", "Failed", timeout=60)
    assert st["phase"] == "Completed", st
    assert [s["name"] for s in st["stepStatuses"]] == ["extract-eu", "score-eu"]
    assert st["template"]["steps"][1]["args"] == ["--dry-run=true"]
    ran = sorted(j.metadata.labels["dataworks.io/step"] for j in jobs(client, namespace, "eu-run"))
    assert ran == ["extract-eu", "score-eu"]
    described = subprocess.run(
        [CTL, "describe", "eu-run", "-n", namespace, "--kubeconfig", kubeconfig, "-o", "json"],
        capture_output=True,
        text=True,
        check=True,
    )
    shown = json.loads(described.stdout)
    assert shown["template"]["name"] == "nightly"
    assert shown["template"]["parameters"] == {"region": "eu", "workers": 2, "dry_run": True}
    # A pipeline created after the edit gets the new steps.
    create(client, namespace, templated("after", region="us"))
    st = wait_phase(client, namespace, "after", "Completed", "Failed", timeout=60)
    assert [s["name"] for s in st["stepStatuses"]] == ["changed"]


@pytest.mark.parametrize(
    ("parameters", "template_name", "message"),
    [
        pytest.param(
            {}, "nightly", "parameters.region: is required by template nightly", id="missing-required"
        ),
        pytest.param(
            {"region": "eu", "workers": "many"},
            "nightly",
            "parameters.workers: must be an integer, got 'many'",
            id="wrong-type",
        ),
        pytest.param(
            {"region": "asia"},
            "nightly",
            "parameters.region: must be one of eu, us, got 'asia'",
            id="not-in-enum",
        ),
        pytest.param(
            {"region": "eu", "zone": "a"},
            "nightly",
            "parameters.zone: is not a parameter of template nightly; its parameters are region, workers, "
            "dry_run",
            id="unknown-parameter",
        ),
        pytest.param(
            {"region": "eu"},
            "required-default",
            "template: PipelineTemplate 'required-default' is invalid: parameters.0: Value error, a required "
            "parameter has no default",
            id="template-invalid",
        ),
        pytest.param(
            {"region": "eu"},
            "nightlyy",
            "template: PipelineTemplate 'nightlyy' not found in namespace",
            id="unknown-template",
        ),
    ],
)
def test_bad_parameters_are_refused_naming_the_parameter(
    client: Client, namespace: str, parameters: dict[str, Any], template_name: str, message: str
) -> None:
    client.create(codecs.from_dict(template()), namespace=namespace)
    odd = template("required-default", parameters=[{"name": "region", "required": True, "default": "eu"}])
    client.create(codecs.from_dict(odd), namespace=namespace)  # the API server cannot check this one
    create(client, namespace, templated("bad", template_name, **parameters))
    st = wait_phase(client, namespace, "bad", "Failed", timeout=30)
    assert message in st["message"], st["message"]
    assert jobs(client, namespace, "bad") == []


@pytest.mark.parametrize(
    ("obj", "message"),
    [
        pytest.param(
            {**templated("both", region="eu"), "spec": {"template": "nightly", "steps": [step("a")]}},
            "spec.template: Invalid value: give steps or a template, not both",
            id="steps-and-template",
        ),
        pytest.param(
            {**templated("loose"), "spec": {"parameters": {"a": 1}, "steps": [step("a")]}},
            "parameters fill in a template: set spec.template",
            id="parameters-without-template",
        ),
        pytest.param(
            template("enum", parameters=[{"name": "e", "type": "enum"}]),
            "spec.parameters[0].values: Invalid value: an enum parameter lists its values",
            id="enum-without-values",
        ),
        pytest.param(
            template("badname", parameters=[{"name": "source-system"}]),
            'spec.parameters[0].name: Invalid value: "source-system"',
            id="parameter-name-not-an-identifier",
        ),
    ],
)
def test_the_api_server_refuses_bad_templates_and_templated_pipelines(
    client: Client, namespace: str, obj: dict[str, Any], message: str
) -> None:
    with pytest.raises(ApiError) as e:
        client.create(codecs.from_dict(obj), namespace=namespace)
    assert message in e.value.status.message, e.value.status.message


def test_get_plt_lists_templates(cluster: Cluster, namespace: str) -> None:
    cluster.client.create(codecs.from_dict(template()), namespace=namespace)
    out = cluster.kubectl("get", "plt", "-n", namespace)
    assert out.stdout.split()[:3] == ["NAME", "AGE", "nightly"], out.stdout
    assert (
        yaml.safe_load(cluster.kubectl("get", "plt", "nightly", "-n", namespace, "-o", "yaml").stdout)[
            "spec"
        ]["parameters"][0]["name"]
        == "region"
    )
