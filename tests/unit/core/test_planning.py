"""Table-driven tests of the Pipeline planner."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from dataworks.api import pipeline as api
from dataworks.core.kit.clock import ts
from dataworks.core.kit.plan import Meta
from dataworks.core.pipelines import planning
from tests.builders import pipelines as builders
from tests.builders.pipelines import T0, Sim, make_pipeline


def diamond(**on_failure: str):  # type: ignore[no-untyped-def]
    b = make_pipeline("d")
    b.step("a", onFailure=on_failure.get("a", "fail"))
    b.step("b", depends_on=["a"], onFailure=on_failure.get("b", "fail"))
    b.step("c", depends_on=["a"], onFailure=on_failure.get("c", "fail"))
    b.step("d", depends_on=["b", "c"])
    return b


def test_diamond_runs_in_dependency_order() -> None:
    sim = Sim(diamond())
    status = sim.run()
    assert status.phase == "Completed"
    assert sim.created[0] == "a"
    assert set(sim.created[1:3]) == {"b", "c"}
    assert sim.created[3] == "d"
    assert status.progress == "4/4"
    assert [e.reason for e in sim.events].count("StepCompleted") == 4
    assert sim.events[-1].reason == "PipelineCompleted"


def test_without_step_events_only_failures_and_outcomes_are_events() -> None:
    quiet = planning.Settings(step_events=False)
    sim = Sim(diamond(b="continue"), fail={"b": {1}}, settings=quiet)
    assert sim.run().phase == "Completed"
    assert [(e.reason, e.step) for e in sim.events] == [("StepFailed", "b"), ("PipelineCompleted", None)]
    loud = Sim(diamond(b="continue"), fail={"b": {1}})
    loud.run()
    assert [e.reason for e in loud.events].count("StepStarted") == 4


def test_independent_branches_start_together() -> None:
    sim = Sim(diamond())
    sim.reconcile()
    sim.finish_running()
    plan = sim.reconcile()
    assert sorted(launch.step.name for launch in plan.create) == ["b", "c"]


@pytest.mark.parametrize(
    ("on_failure", "phases", "pipeline_phase"),
    [
        ("fail", {"b": "Failed", "c": "Completed", "d": "Skipped"}, "Failed"),
        ("skip-dependents", {"b": "Failed", "c": "Completed", "d": "Skipped"}, "Completed"),
        ("continue", {"b": "Failed", "c": "Completed", "d": "Completed"}, "Completed"),
    ],
)
def test_on_failure(on_failure: str, phases: dict[str, str], pipeline_phase: str) -> None:
    sim = Sim(diamond(b=on_failure), fail={"b": {1}})
    status = sim.run()
    assert {s: sim.phase(s) for s in phases} == phases
    assert status.phase == pipeline_phase
    if pipeline_phase == "Failed":
        assert status.message == "step b failed: BackoffLimitExceeded"
        failed = next(c for c in status.conditions if c.type == "Failed")
        assert (failed.status, failed.reason) == ("True", "BackoffLimitExceeded")


def test_reconcile_twice_creates_nothing_twice() -> None:
    sim = Sim(diamond())
    first = sim.reconcile()
    again = builders.plan(Meta("d", "ns"), sim.builder.spec, sim.status, list(sim.jobs.values()), now=sim.now)
    assert [launch.job_name for launch in first.create] == ["d-a"]
    assert again.create == []
    assert again.events == []


def test_unobserved_running_step_is_relaunched_with_the_same_name() -> None:
    sim = Sim(diamond())
    sim.reconcile()
    lost = builders.plan(Meta("d", "ns"), sim.builder.spec, sim.status, [], now=sim.now)
    assert [launch.job_name for launch in lost.create] == ["d-a"]  # AlreadyExists adopts


def test_max_parallel_limits_running_steps() -> None:
    b = make_pipeline("w").set(maxParallel=2)
    for i in range(5):
        b.step(f"s{i}")
    sim = Sim(b)
    assert len(sim.reconcile().create) == 2
    sim.finish_running()
    assert len(sim.reconcile().create) == 2
    assert sim.run().phase == "Completed"


def test_shutdown_deletes_running_jobs_and_cancels() -> None:
    sim = Sim(diamond())
    sim.reconcile()
    sim.builder.set(shutdown="Terminate")
    plan = sim.reconcile()
    assert plan.delete == ["d-a"]
    assert plan.status.phase == "Cancelled"
    assert {s.phase for s in plan.status.step_statuses} == {"Cancelled"}
    assert plan.events[-1].reason == "PipelineCancelled"


def test_suspend_then_resume() -> None:
    sim = Sim(diamond())
    sim.reconcile()
    sim.builder.set(suspend=True)
    plan = sim.reconcile()
    assert plan.suspend == ["d-a"]
    assert plan.status.phase == "Suspended"
    sim.finish_running()
    assert sim.reconcile().create == []  # nothing new starts while suspended
    sim.builder.set(suspend=False)
    assert sim.run().phase == "Completed"


def test_retry_reruns_failed_and_skipped_steps_once() -> None:
    sim = Sim(diamond(), fail={"b": {1}})
    assert sim.run().phase == "Failed"
    created_before = list(sim.created)
    sim.builder.set(retry={"id": "r1"})
    status = sim.run()
    assert status.phase == "Completed"
    assert sim.created[len(created_before) :] == ["b", "d"]
    assert "d-b-a2" in sim.jobs  # a new Job for the new attempt
    again = sim.reconcile()
    assert again.create == []
    assert again.status.phase == "Completed"


def test_retry_of_one_named_step() -> None:
    sim = Sim(diamond(), fail={"b": {1}, "c": {1}})
    sim.run()
    sim.builder.set(retry={"id": "only-c", "step": "c"})
    sim.reconcile()
    assert sim.phase("c") == "Running"
    assert sim.phase("b") == "Failed"


@pytest.mark.parametrize(
    ("steps", "message"),
    [
        (
            [
                {"name": "a", "type": "fetch", "config": {"source": "x"}, "dependsOn": ["b"]},
                {"name": "b", "type": "fetch", "config": {"source": "x"}, "dependsOn": ["a"]},
            ],
            "forms a cycle: a -> b -> a",
        ),
        (
            [{"name": "a", "type": "fetch", "config": {"source": "x"}, "dependsOn": ["ghost"]}],
            "names 'ghost'",
        ),
        ([{"name": "t", "type": "transform"}], "step 't': config.sql: is required for a transform step"),
        (
            [{"name": "f", "type": "fan-out", "config": {"parallelism": 0}}],
            "config.parallelism: must be between 1 and 1000, got 0",
        ),
        ([{"name": "f", "type": "fan-out", "config": {"parallelism": 100000}}], "got 100000"),
        (
            [{"name": "l", "type": "load", "config": {"destination": "bigquery"}}],
            "'bigquery' is not supported; supported destinations: postgres, file, duckdb, sqlite",
        ),
        (
            [{"name": "c", "type": "container", "image": "x", "resources": {"cpu": "abc"}}],
            'resources.requests.cpu: "abc" is not a Kubernetes quantity',
        ),
        ([{"name": "c", "type": "container", "image": "x", "config": "text"}], "step 'c': steps.0.config"),
    ],
)
def test_invalid_spec_is_failed_with_the_step_and_field(steps: list[dict[str, object]], message: str) -> None:
    plan = builders.plan(
        Meta("bad", "ns"), {"steps": steps}, None, [], now=builders.at("2026-01-01T00:00:00Z")
    )
    assert plan.create == []
    assert plan.status.phase == "Failed"
    valid = next(c for c in plan.status.conditions if c.type == "Valid")
    assert (valid.status, valid.reason) == ("False", "InvalidSpec")
    assert message in valid.message, valid.message
    assert [e.reason for e in plan.events] == ["InvalidSpec"]


def test_ttl_after_finished_requeues_then_deletes() -> None:
    sim = Sim(make_pipeline("t").step("a").set(ttlSecondsAfterFinished=30))
    status = sim.run()
    done = builders.at(status.completion_time or "")
    early = builders.plan(Meta("t", "ns"), sim.builder.spec, status, list(sim.jobs.values()), now=done)
    assert early.requeue_at == done + timedelta(seconds=30)
    assert not early.delete_pipeline
    late = builders.plan(
        Meta("t", "ns"),
        sim.builder.spec,
        status,
        list(sim.jobs.values()),
        now=done + timedelta(seconds=31),
    )
    assert late.delete_pipeline


def test_deadline_wakes_the_operator_and_fails_the_pipeline() -> None:
    sim = Sim(make_pipeline("dl").step("slow").set(activeDeadlineSeconds=60))
    first = sim.reconcile()
    start = builders.at(first.status.start_time or "")
    assert first.requeue_at == start + timedelta(seconds=61)
    sim.now = start + timedelta(seconds=61)
    late = sim.reconcile()
    assert late.delete == ["dl-slow"]
    assert late.status.phase == "Failed"
    assert next(c for c in late.status.conditions if c.type == "Failed").reason == "DeadlineExceeded"


@pytest.mark.parametrize("later", [120, 400], ids=["resync-after-deadline", "ttl-wake-up"])
def test_a_pipeline_that_completed_in_time_stays_completed_after_its_deadline(later: int) -> None:
    sim = Sim(make_pipeline("dl").step("a").set(activeDeadlineSeconds=60, ttlSecondsAfterFinished=300))
    done = sim.run()
    start = builders.at(done.start_time or "")
    p = builders.plan(
        Meta("dl", "ns"),
        sim.builder.spec,
        done,
        list(sim.jobs.values()),
        now=start + timedelta(seconds=later),
    )
    assert (p.status.phase, p.status.message) == ("Completed", "1 of 1 steps completed")
    assert p.events == []  # no PipelineFailed, so no failure notification either
    assert p.delete_pipeline is (later >= 300)


def test_cancelling_a_finished_pipeline_or_clearing_shutdown_keeps_its_outcome() -> None:
    failed = Sim(make_pipeline("f").step("a").step("b").set(activeDeadlineSeconds=60))
    failed.reconcile()
    failed.now += timedelta(seconds=61)
    assert failed.reconcile().status.message == "pipeline exceeded activeDeadlineSeconds=60"
    failed.builder.set(shutdown="Terminate")
    late = failed.reconcile()
    assert (late.status.phase, late.status.message, late.events) == (
        "Failed",
        "pipeline exceeded activeDeadlineSeconds=60",
        [],
    )
    cancelled = Sim(make_pipeline("c").step("a").step("b", depends_on=["a"]))
    cancelled.reconcile()
    cancelled.builder.set(shutdown="Terminate")
    assert cancelled.reconcile().status.phase == "Cancelled"
    cancelled.builder.spec.pop("shutdown")
    cleared = cancelled.reconcile()
    assert (cleared.status.phase, cleared.events, cleared.create) == ("Cancelled", [], [])


def test_a_retry_never_leaves_two_jobs_of_one_step_running() -> None:
    sim = Sim(make_pipeline("r").step("a"))
    sim.reconcile()  # a is running as r-a
    sim.builder.set(retry={"id": "again", "step": "a"})
    plan = sim.reconcile()
    live = [name for name, j in sim.jobs.items() if j.step == "a" and j.state == "Active"]
    assert len(live) - len(plan.delete) <= 1, live
    assert not plan.create  # refused: a Warning says why, and the request's id is spent
    assert [(e.type, e.reason) for e in plan.events] == [("Warning", "RetryRefused")]
    assert "step a is running (attempt 1)" in plan.events[0].message
    assert plan.status.last_retry_id == "again"


def test_a_retry_past_the_deadline_runs_its_steps_or_leaves_them_finished() -> None:
    sim = Sim(make_pipeline("dl").step("a").set(activeDeadlineSeconds=5))
    sim.reconcile()
    sim.now += timedelta(seconds=10)
    assert sim.reconcile().status.phase == "Failed"
    sim.builder.set(retry={"id": "r1"})
    plan = sim.reconcile()
    assert plan.create or all(s.phase in api.TERMINAL_STEP_PHASES for s in plan.status.step_statuses)
    # The retry starts the deadline clock again: a runs as attempt 2, the pipeline runs.
    assert [c.step.name for c in plan.create] == ["a"]
    assert plan.status.phase == "Running"
    assert plan.status.start_time == ts(sim.now)


def test_edits_to_started_steps_are_reported_and_edits_to_waiting_steps_apply() -> None:
    sim = Sim(make_pipeline("e").step("a").step("b", depends_on=["a"]))
    sim.reconcile()
    sim.builder.spec["steps"][0]["args"] = ["changed"]
    sim.builder.spec["steps"][1]["args"] = ["new"]
    plan = builders.plan(
        Meta("e", "ns", generation=2),
        sim.builder.spec,
        sim.status,
        list(sim.jobs.values()),
        now=sim.now,
    )
    assert [(e.reason, e.message.split(":")[0]) for e in plan.events] == [
        ("SpecChangeIgnored", "step a is running")
    ]
    sim.status = plan.status
    sim.finish_running()
    launch = sim.reconcile().create[0]
    assert launch.step.name == "b"
    assert launch.step.args == ("new",)


def test_request_above_own_limit_is_invalid() -> None:
    b = make_pipeline("r").step("a", resources={"requests": {"cpu": "4"}, "limits": {"cpu": "2"}})
    plan = builders.plan(Meta("r", "ns"), b.spec, None, [], now=builders.at("2026-01-01T00:00:00Z"))
    assert plan.status.phase == "Failed"
    assert "step 'a': resources.requests.cpu: 4 exceeds its limit 2" in (plan.status.message or "")


def test_pod_failure_message_is_the_last_error_line_of_the_newest_failure() -> None:
    from dataworks.core.kit import jobs as observations

    def pod(finished: str, message: str) -> dict[str, object]:
        term = {"exitCode": 1, "finishedAt": finished, "message": message}
        return {"status": {"containerStatuses": [{"state": {"terminated": term}}]}}

    pods = [
        pod("2026-01-01T00:00:01Z", "error: first try"),
        pod("2026-01-01T00:00:09Z", "x\nerror: second\ntail"),
    ]
    assert observations.pod_failure_message(pods) == "second"
    assert observations.pod_failure_message([pod("t", "just text\nlast line")]) == "last line"
    assert observations.pod_failure_message([]) is None
    assert len(observations.one_line("error: " + "x" * 1000)) == observations.MESSAGE_LIMIT


def test_notices_severity_filter_cooldown_and_payloads() -> None:
    from dataworks.api.config import Receiver
    from dataworks.core.pipelines import notifying

    every = Receiver.model_validate({"name": "all", "urlSecret": {"name": "s"}, "cooldownSeconds": 600})
    pager = Receiver.model_validate(
        {"name": "pager", "format": "slack", "urlSecret": {"name": "s"}, "minSeverity": "critical"}
    )
    sim = Sim(make_pipeline("p").step("a", onFailure="continue").step("b", depends_on=["a"]), fail={"a": {1}})
    done = sim.run()  # a failed on its own (continue): a warning, the pipeline completes
    sent: dict[tuple[str, str, str], datetime] = {}
    got = notifying.notices(("ns", "p"), None, done, receivers=[every, pager], last_sent=sent, now=T0)
    assert [(n.receiver.name, n.severity, n.step) for n in got] == [("all", "warning", "a")]
    body = notifying.payload(got[0])
    assert body["pipeline"] == "p"
    assert body["reason"] == "BackoffLimitExceeded"
    assert body["hint"] == "dataworks describe p -n ns; dataworks logs p -n ns --step a"
    failing = Sim(make_pipeline("q").step("a"), fail={"a": {1}}).run()
    sent[("all", "ns", "q")] = T0
    got = notifying.notices(("ns", "q"), None, failing, receivers=[every, pager], last_sent=sent, now=T0)
    assert [(n.receiver.name, n.severity) for n in got] == [("pager", "critical")]  # "all" is cooling down
    assert notifying.payload(got[0])["text"].startswith(
        ":red_circle: *ns/q*: step a failed (BackoffLimitExceeded)"
    )
    later = T0 + timedelta(seconds=601)
    again = notifying.notices(("ns", "q"), None, failing, receivers=[every], last_sent=sent, now=later)
    assert len(again) == 1
    assert notifying.notices(("ns", "q"), failing, failing, receivers=[every], last_sent={}, now=later) == []
