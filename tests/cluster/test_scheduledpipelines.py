"""ScheduledPipelines on the real control plane, driven by an injected clock: the operator reads
"now" from a file (`--clock-file`), so the test moves time forward instead of waiting for a
minute boundary. Runs are created when due, Forbid skips one while another runs, a restart
while a run is due creates exactly one, `dataworks trigger` runs one now, and history is kept
to its limits."""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from lightkube import Client, codecs
from lightkube.resources.core_v1 import Event
from lightkube.types import PatchType

from dataworks.api import scheduledpipeline as api
from dataworks.core.kit.clock import parse_ts, ts
from dataworks.core.scheduledpipelines.planning import run_name
from dataworks.kube import resources
from dataworks.kube.resources import Pipeline
from tests.cluster import helpers
from tests.cluster.conftest import Cluster, Operator
from tests.cluster.pipelines import eventually, step

ScheduledPipeline = resources.of(api.INFO)
CTL = str(Path(sys.executable).parent / "dataworks")
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def due(days: int) -> datetime:
    """02:00 UTC `days` days from today (the schedules below run at 02:00)."""
    today = datetime.now(UTC).replace(hour=2, minute=0, second=0, microsecond=0)
    return today + timedelta(days=days)


def at(day: datetime, seconds: int) -> str:
    return ts(day + timedelta(seconds=seconds))


class Clock:
    def __init__(self, path: Path) -> None:
        self.path = path

    def set(self, at: str) -> None:
        self.path.write_text(at)


@pytest.fixture
def clocked(operator: Operator, cluster: Cluster, tmp_path: Path) -> Iterator[tuple[Clock, Operator]]:
    """The session's operator stopped; one that reads its clock from a file instead."""
    clock = Clock(tmp_path / "now")
    clock.set(ts(datetime.now(UTC)))  # the objects' creation times are real: start from them
    operator.stop()
    own = Operator(cluster.kubeconfig, tmp_path / "operator.log", "--clock-file", str(clock.path))
    own.start()
    try:
        yield clock, own
    finally:
        own.stop()
        operator.start()


def schedule(name: str, **spec: Any) -> dict[str, Any]:
    body = {
        "schedule": ["0 2 * * *"],
        "pipeline": {"steps": [step("work", fate={"duration": "60s"}, args=["--day={{.scheduledDate}}"])]},
        "concurrencyPolicy": "Forbid",
        **spec,
    }
    return {
        "apiVersion": "dataworks.io/v1",
        "kind": "ScheduledPipeline",
        "metadata": {"name": name},
        "spec": body,
    }


def poke(client: Client, namespace: str, name: str) -> None:
    """Any change to the object wakes its reconcile (the runtime's timers run on real time)."""
    stamp = {"metadata": {"annotations": {"test/poke": str(time.monotonic())}}}
    client.patch(ScheduledPipeline, name, stamp, namespace=namespace, patch_type=PatchType.MERGE)


def runs(client: Client, namespace: str, name: str) -> list[str]:
    found = client.list(Pipeline, namespace=namespace, labels={api.OWNER_LABEL: name})
    return sorted(p.metadata.name for p in found if not p.metadata.deletionTimestamp)


def status_of(client: Client, namespace: str, name: str) -> dict[str, Any]:
    return dict(client.get(ScheduledPipeline, name, namespace=namespace).to_dict().get("status") or {})


def wait_status(client: Client, namespace: str, name: str, ok: Any, what: str) -> dict[str, Any]:
    got = helpers.wait_for(
        client,
        ScheduledPipeline,
        name,
        namespace,
        lambda o: bool(ok(o.to_dict().get("status") or {})),
        timeout=30,
        what=what,
    )
    return dict(got.to_dict()["status"])


def test_runs_are_created_when_due_and_forbid_skips_one_while_another_runs(
    clocked: tuple[Clock, Operator], client: Client, namespace: str
) -> None:
    clock, _ = clocked
    client.create(codecs.from_dict(schedule("nightly")), namespace=namespace)
    wait_status(client, namespace, "nightly", lambda s: s.get("nextScheduleTime"), "the next due time")
    assert runs(client, namespace, "nightly") == []
    d1, d2 = due(1), due(2)
    clock.set(at(d1, 4))
    poke(client, namespace, "nightly")
    first = run_name("nightly", d1)
    st = wait_status(client, namespace, "nightly", lambda s: s.get("active") == [first], "the first run")
    assert st["lastScheduleTime"] == ts(d1)
    assert st["nextScheduleTime"] == ts(d2)
    run = client.get(Pipeline, first, namespace=namespace).to_dict()
    assert run["spec"]["steps"][0]["args"] == [f"--day={d1.date().isoformat()}"]
    assert run["metadata"]["annotations"][api.SCHEDULED_AT] == ts(d1)
    # A day later the first run still runs (60 s): Forbid skips the second.
    clock.set(at(d2, 3))
    poke(client, namespace, "nightly")
    wait_status(client, namespace, "nightly", lambda s: s.get("lastScheduleTime") == ts(d2), "the skip")
    assert runs(client, namespace, "nightly") == [first]
    skipped = [e.message for e in client.list(Event, namespace=namespace) if e.reason == "ScheduleSkipped"]
    assert skipped == [
        f"the run due at {ts(d2)} is skipped: {first} has not finished (concurrencyPolicy: Forbid)"
    ]


def test_a_restart_while_a_run_is_due_creates_exactly_one(
    clocked: tuple[Clock, Operator], client: Client, namespace: str
) -> None:
    clock, own = clocked
    client.create(codecs.from_dict(schedule("daily", concurrencyPolicy="Allow")), namespace=namespace)
    wait_status(client, namespace, "daily", lambda s: s.get("nextScheduleTime"), "the next due time")
    own.stop()
    clock.set(at(due(3), 30))  # three due times passed while the operator was down
    own.start()
    wanted = [run_name("daily", due(3))]  # only the latest
    eventually(lambda: runs(client, namespace, "daily") == wanted, timeout=60, what="one run")
    own.stop(kill=True)
    own.start()
    poke(client, namespace, "daily")
    wait_status(client, namespace, "daily", lambda s: s.get("active") == wanted, "the run adopted")
    time.sleep(2)
    assert runs(client, namespace, "daily") == wanted


def test_trigger_runs_one_now_and_history_is_kept_to_its_limit(
    clocked: tuple[Clock, Operator], cluster: Cluster, namespace: str
) -> None:
    client = cluster.client
    quick = {"steps": [step("work")]}
    client.create(
        codecs.from_dict(
            schedule("adhoc", pipeline=quick, successfulHistoryLimit=1, concurrencyPolicy="Allow")
        ),
        namespace=namespace,
    )
    wait_status(client, namespace, "adhoc", lambda s: s.get("nextScheduleTime"), "the next due time")
    made = []
    for _ in range(2):
        out = subprocess.run(
            [CTL, "trigger", "spl/adhoc", "-n", namespace, "--kubeconfig", cluster.kubeconfig],
            capture_output=True,
            text=True,
            check=False,
        )
        assert out.returncode == 0, out.stderr
        made.append(out.stdout.split("/")[1].split()[0])
        helpers.wait_for(
            client,
            Pipeline,
            made[-1],
            namespace,
            lambda p: (p.to_dict().get("status") or {}).get("phase") == "Completed",
            timeout=60,
            what="the triggered run",
        )
    assert all(m.startswith("adhoc-m") for m in made)
    poke(client, namespace, "adhoc")
    eventually(lambda: len(runs(client, namespace, "adhoc")) == 1, timeout=30, what="history of 1")
    st = status_of(client, namespace, "adhoc")
    assert st.get("lastSuccessfulTime")


def test_a_bad_cron_expression_is_named(
    clocked: tuple[Clock, Operator], client: Client, namespace: str
) -> None:
    client.create(codecs.from_dict(schedule("broken", schedule=["0 2 * *"])), namespace=namespace)
    st = wait_status(client, namespace, "broken", lambda s: s.get("message"), "the message")
    assert (
        st["message"]
        == "spec.schedule[0]: '0 2 * *' is not a cron expression of five fields, e.g. '0 2 * * *'"
    )


def test_the_example_applies_and_runs_its_template_when_due(
    clocked: tuple[Clock, Operator], cluster: Cluster, namespace: str
) -> None:
    clock, _ = clocked
    out = cluster.kubectl(
        "apply",
        "-n",
        namespace,
        "-f",
        str(EXAMPLES / "template.yaml"),
        "-f",
        str(EXAMPLES / "scheduled.yaml"),
    )
    assert "scheduledpipeline.dataworks.io/orders-report-daily created" in out.stdout
    client = cluster.client
    wait_status(
        client, namespace, "orders-report-daily", lambda s: s.get("nextScheduleTime"), "the next due time"
    )
    nxt = parse_ts(status_of(client, namespace, "orders-report-daily")["nextScheduleTime"])
    clock.set(at(nxt, 5))
    poke(client, namespace, "orders-report-daily")
    name = run_name("orders-report-daily", nxt)
    eventually(lambda: name in runs(client, namespace, "orders-report-daily"), timeout=30, what="the run")
    run = client.get(Pipeline, name, namespace=namespace).to_dict()
    local_day = nxt.astimezone(ZoneInfo("Europe/Berlin")).date().isoformat()
    assert run["spec"] == {
        "template": "orders-report",
        "parameters": {"segment": "enterprise", "report_date": local_day},
    }
    got = helpers.wait_for(
        client,
        Pipeline,
        name,
        namespace,
        lambda p: bool((p.to_dict().get("status") or {}).get("template")),
        what="the expansion",
    )
    steps = got.to_dict()["status"]["template"]["steps"]
    assert f"'{local_day}' AS report_date" in steps[2]["config"]["sql"]
