"""A second kind shares the operator with Pipeline: the runtime routes each child Job to the
controller that owns it, and owner references, Events and metrics carry the child's own kind.

The kind is Widget (tests/builders/widgets.py, tests only), run by dataworks-operator with the
Widget controller added. Its Jobs even carry a Pipeline's label, yet never reach the Pipeline
controller: that pipeline is reconciled no more once the widgets run.
"""

from __future__ import annotations

import re
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from lightkube import Client, codecs
from lightkube.generic_resource import create_namespaced_resource
from lightkube.resources.batch_v1 import Job
from lightkube.resources.core_v1 import Event

from dataworks.api import crdgen
from tests.builders import widgets
from tests.builders.net import free_port, wait_port
from tests.cluster import helpers
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import create, manifest, step, wait_phase

Widget = create_namespaced_resource("dataworks.io", "v1", "Widget", "widgets")


def reconciles(port: int) -> dict[str, float]:
    """dataworks_reconcile_duration_seconds_count by kind, from the operator's /metrics."""
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    pattern = r'^dataworks_reconcile_duration_seconds_count\{kind="([^"]+)"\} ([0-9.e+]+)$'
    return {kind: float(n) for kind, n in re.findall(pattern, text, flags=re.M)}


def test_a_second_kind_owns_its_jobs(
    cluster: Cluster, client: Client, namespace: str, tmp_path: Path
) -> None:
    for obj in codecs.load_all_yaml(helpers.to_yaml(crdgen.crd(widgets.INFO))):
        client.apply(obj, field_manager="dataworks-tests", force=True)
    port = free_port()
    op = Operator(
        cluster.kubeconfig,
        tmp_path / "operator.log",
        "--controllers",
        "pipelines,widgets",
        "--health-port",
        str(port),
        program=[sys.executable, "-m", "tests.builders.widgets"],
    )
    op.start()
    try:
        wait_port(port)
        create(client, namespace, manifest("p", [step("a")]))
        wait_phase(client, namespace, "p", "Completed")
        time.sleep(1)  # let the last Job events of the pipeline arrive
        before = reconciles(port)
        assert before.get("Pipeline", 0) >= 1

        body: dict[str, Any] = {
            "apiVersion": "dataworks.io/v1",
            "kind": "Widget",
            "metadata": {"name": "w"},
            "spec": {"jobs": 2, "pipelineLabel": "p"},
        }
        client.create(codecs.from_dict(body), namespace=namespace)
        done = helpers.wait_for(
            client,
            Widget,
            "w",
            namespace,
            lambda w: (w.to_dict().get("status") or {}).get("phase") == "Completed",
            timeout=60,
            what="Completed",
        )
        assert done.to_dict()["status"]["done"] == 2

        owned = list(client.list(Job, namespace=namespace, labels={"dataworks.io/widget": "w"}))
        assert sorted(j.metadata.name for j in owned) == ["w-0", "w-1"]
        for j in owned:
            (ref,) = j.metadata.ownerReferences
            assert (ref.apiVersion, ref.kind, ref.name, ref.controller) == (
                "dataworks.io/v1",
                "Widget",
                "w",
                True,
            )

        events = [e for e in client.list(Event, namespace=namespace) if e.involvedObject.name == "w"]
        assert [(e.involvedObject.kind, e.reason) for e in events] == [("Widget", "WidgetCompleted")]

        after = reconciles(port)
        assert after.get("Widget", 0) >= 2
        assert after.get("Pipeline", 0) == before.get("Pipeline", 0), (
            "a Widget's Job reached the Pipeline controller"
        )
        p = client.get(
            create_namespaced_resource("dataworks.io", "v1", "Pipeline", "pipelines"),
            "p",
            namespace=namespace,
        )
        assert [s["jobName"] for s in p.to_dict()["status"]["stepStatuses"]] == ["p-a"]
    finally:
        op.stop()
