"""Whole planning passes (core/sequentialjobs/planning.py) against a simulated Job controller: the
sequence runs one Job at a time in order with the seed's Events; a failing middle step stops it, or
with onFailure: continue does not; a re-run from the failed step keeps the completed steps' Jobs and
outputs; suspend starts nothing and suspends the running Job; a repeated pass is a no-op; a pass
that lost its status write adopts the Job it created; the deadline and the TTL wake the runtime;
an invalid spec starts nothing until it is fixed; a finished sequence stays finished."""

from __future__ import annotations

from datetime import timedelta

from dataworks.core.kit.clock import parse_ts
from dataworks.core.kit.jobs import JobView
from dataworks.core.sequentialjobs.work import PodFacts
from tests.builders.sequentialjobs import T0, Sim, make_sqj, phases, plan, stamp

SEED_EVENTS = [
    "JobStarted",
    "JobCompleted",
    "JobStarted",
    "JobCompleted",
    "JobStarted",
    "JobCompleted",
    "SequenceCompleted",
]


def test_the_steps_run_one_at_a_time_in_order() -> None:
    sim = Sim(make_sqj("s", "extract", "transform", "load"), outputs={"transform": "rows=120"})
    sim.reconcile()
    assert sim.created == ["s-extract"]
    sim.reconcile()
    assert sim.created == ["s-extract"]  # extract still runs: nothing else starts
    status = sim.run()
    assert sim.created == ["s-extract", "s-transform", "s-load"]
    assert status.phase == "Completed"
    assert sim.reasons() == SEED_EVENTS
    assert {s.name: s.output for s in status.steps} == {
        "extract": "",
        "transform": "rows=120",
        "load": "",
    }
    assert [e.message for e in sim.events][:2] == [
        "Started job 0 (extract): Job s-extract",
        "Job 0 (extract) completed successfully",
    ]


def test_a_failing_middle_step_stops_the_sequence() -> None:
    sim = Sim(make_sqj("s", "a", "b", "c"), fail={"b": {1}})
    status = sim.run()
    assert sim.created == ["s-a", "s-b"]
    assert (status.phase, phases(status)) == ("Failed", {"a": "Completed", "b": "Failed", "c": "Skipped"})
    assert sim.reasons() == ["JobStarted", "JobCompleted", "JobStarted", "JobFailed", "SequenceFailed"]


def test_on_failure_continue_goes_on() -> None:
    sim = Sim(make_sqj("s", "a", "b", "c").policy("b", onFailure="continue"), fail={"b": {1}})
    status = sim.run()
    assert sim.created == ["s-a", "s-b", "s-c"]
    assert (status.phase, status.state.failed, status.state.succeeded) == ("Completed", 1, 2)


def test_a_rerun_from_the_failed_step_keeps_the_completed_steps() -> None:
    builder = make_sqj("s", "a", "b", "c")
    sim = Sim(builder, fail={"b": {1}}, outputs={"a": "rows=3"})
    sim.run()
    builder.set(retry={"id": "r1"})
    sim.generation = 2
    status = sim.run()
    assert sim.created == ["s-a", "s-b", "s-b-a2", "s-c"]
    assert status.phase == "Completed"
    assert {s.name: (s.attempt, s.job_name, s.output) for s in status.steps} == {
        "a": (1, "s-a", "rows=3"),
        "b": (2, "s-b-a2", ""),
        "c": (1, "s-c", ""),
    }
    assert sim.reasons()[5:] == [
        "Rerun",
        "JobStarted",
        "JobCompleted",
        "JobStarted",
        "JobCompleted",
        "SequenceCompleted",
    ]
    sim.reconcile()
    assert len(sim.created) == 4  # the request was applied once


def test_suspend_starts_nothing_and_suspends_the_running_job() -> None:
    builder = make_sqj("s", "a", "b")
    sim = Sim(builder)
    sim.reconcile()
    builder.set(suspend=True)
    p = sim.reconcile()
    assert (p.suspend, p.status.phase) == (["s-a"], "Suspended")
    sim.jobs["s-a"] = JobView("s-a", "a", 1, "Suspended")
    sim.finish_running()
    assert sim.reconcile().create == []
    builder.set(suspend=False)
    p = sim.reconcile()
    assert (p.resume, p.status.phase) == (["s-a"], "Running")


def test_a_repeated_pass_is_a_no_op() -> None:
    builder = make_sqj("s", "a", "b")
    first = plan(builder, None, [], now=T0)
    job = JobView("s-a", "a", 1, "Active", start_time=stamp())
    second = plan(builder, first.status, [job], now=T0 + timedelta(seconds=5))
    assert (second.create, second.events) == ([], [])
    assert second.status == first.status


def test_a_lost_status_write_adopts_the_job_and_repeats_no_event() -> None:
    builder = make_sqj("s", "a", "b")
    first = plan(builder, None, [], now=T0)
    assert [e.reason for e in first.events] == ["JobStarted"]
    # The status write was lost, the Events with it: the Job exists and is seen again.
    job = JobView("s-a", "a", 1, "Active", start_time=stamp())
    again = plan(builder, None, [job], now=T0 + timedelta(seconds=5))
    assert again.create == []  # seen: nothing to create
    assert [e.reason for e in again.events] == ["JobStarted"]  # sent once: the first never was
    unseen = plan(builder, first.status, [], now=T0 + timedelta(seconds=5))
    assert [launch.job_name for launch in unseen.create] == ["s-a"]  # same name: the runtime adopts it
    assert unseen.events == []


def test_the_deadline_wakes_the_runtime_then_fails_the_sequence() -> None:
    builder = make_sqj("s", "a", "b").set(activeDeadlineSeconds=30)
    first = plan(builder, None, [], now=T0)
    assert first.requeue_at == T0 + timedelta(seconds=31)
    job = JobView("s-a", "a", 1, "Active")
    late = plan(builder, first.status, [job], now=T0 + timedelta(seconds=31))
    assert (late.delete, late.status.phase, late.create) == (["s-a"], "Failed", [])
    assert phases(late.status) == {"a": "Cancelled", "b": "Skipped"}
    assert [e.reason for e in late.events] == ["SequenceFailed"]


def test_ttl_after_finished_deletes_the_sequence() -> None:
    builder = make_sqj("s", "a").set(ttlSecondsAfterFinished=60)
    sim = Sim(builder)
    status = sim.run()
    done = parse_ts(status.completion_time or "")
    waiting = plan(builder, status, list(sim.jobs.values()), now=done + timedelta(seconds=10))
    assert (waiting.delete_self, waiting.requeue_at) == (False, done + timedelta(seconds=60))
    assert plan(builder, status, list(sim.jobs.values()), now=done + timedelta(seconds=60)).delete_self


def test_an_invalid_spec_starts_nothing_until_it_is_fixed() -> None:
    builder = make_sqj("s", "a").container("b", volumeMounts=[{"name": "data", "mountPath": "/d"}])
    bad = plan(builder, None, [])
    assert (bad.status.phase, bad.create) == ("Failed", [])
    assert bad.status.message == (
        "invalid spec: spec.containers[1].volumeMounts[0].name: no volume 'data' in "
        "spec.template.spec.volumes (it has none)"
    )
    builder.set(template={"spec": {"volumes": [{"name": "data", "emptyDir": {}}]}})
    fixed = plan(builder, bad.status, [], generation=2)
    assert (fixed.status.phase, [launch.job_name for launch in fixed.create]) == ("Running", ["s-a"])
    assert {c.type: c.status for c in fixed.status.conditions}["Failed"] == "False"


def test_a_finished_sequence_stays_finished() -> None:
    builder = make_sqj("s", "a")
    sim = Sim(builder)
    status = sim.run()
    builder.container("b")
    again = plan(builder, status, list(sim.jobs.values()), generation=2)
    assert (again.create, again.events, again.status.phase) == ([], [], "Completed")
    assert [s.name for s in again.status.steps] == ["a"]


def test_a_retry_while_running_is_ignored_once() -> None:
    builder = make_sqj("s", "a", "b")
    sim = Sim(builder)
    sim.reconcile()
    builder.set(retry={"id": "early"})
    p = sim.reconcile()
    assert [(e.type, e.reason) for e in p.events] == [("Warning", "RetryIgnored")]
    assert sim.reconcile().events == []
    assert sim.run().phase == "Completed"


def test_an_output_read_after_the_transition_wakes_the_runtime_at_once() -> None:
    builder = make_sqj("s", "a", "b")
    first = plan(builder, None, [], now=T0)
    done = JobView("s-a", "a", 1, "Succeeded", start_time=stamp())
    moved = plan(builder, first.status, [done], now=T0 + timedelta(seconds=5))  # pods not read yet
    assert [launch.job_name for launch in moved.create] == ["s-b"]
    assert moved.status.steps[0].output is None
    assert moved.requeue_at == T0 + timedelta(seconds=5)
    b = JobView("s-b", "b", 1, "Active", start_time=stamp(5))
    read = plan(
        builder, moved.status, [done, b], now=T0 + timedelta(seconds=6), facts={"s-a": PodFacts("rows=3")}
    )
    assert (read.create, read.events, read.status.steps[0].output) == ([], [], "rows=3")
    assert read.requeue_at is None
