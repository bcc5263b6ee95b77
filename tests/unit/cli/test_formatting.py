"""pipeline-ctl rendering from plain data."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console

from dataworks.cli import formatting

NOW = datetime(2026, 1, 1, 12, 10, tzinfo=UTC)

RUNNING = {
    "metadata": {"name": "marketing-q1-analysis", "namespace": "ds"},
    "spec": {
        "steps": [
            {"name": "fetch", "type": "fetch"},
            {"name": "join", "type": "transform", "dependsOn": ["fetch"]},
            {"name": "insights", "type": "fan-out", "dependsOn": ["join"]},
        ]
    },
    "status": {
        "phase": "Running",
        "progress": "1/3",
        "startTime": "2026-01-01T12:00:00Z",
        "completedSteps": 1,
        "totalSteps": 3,
        "stepStatuses": [
            {
                "name": "fetch",
                "phase": "Completed",
                "attempt": 1,
                "startTime": "2026-01-01T12:00:00Z",
                "completionTime": "2026-01-01T12:03:45Z",
            },
            {"name": "join", "phase": "Running", "attempt": 2, "startTime": "2026-01-01T12:07:48Z"},
            {"name": "insights", "phase": "Waiting", "attempt": 1},
        ],
    },
}


def render(renderable: object) -> str:
    console = Console(width=120, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_overview_table_has_the_seed_columns() -> None:
    out = render(formatting.pipelines_table([RUNNING], NOW))
    header, row = out.splitlines()[:2]
    assert header.split() == ["Pipeline", "Phase", "Steps", "Duration", "Started"]
    assert row.split() == ["marketing-q1-analysis", "Running", "1/3", "10m00s", "2026-01-01", "12:00:00"]


def test_detail_shows_durations_attempts_and_what_waits_for_what() -> None:
    lines = [str(t) for t in formatting.pipeline_detail(RUNNING, NOW)]
    assert "Steps: 1/3 completed" in lines
    assert "✅ fetch (completed in 3m45s)" in lines
    assert "🔄 join (attempt 2) (running for 2m12s)" in lines
    assert "⏳ insights (waiting for join)" in lines


def test_json_summary_has_a_stable_shape() -> None:
    s = formatting.summary(RUNNING)
    assert list(s) == [
        "name",
        "namespace",
        "phase",
        "progress",
        "startTime",
        "completionTime",
        "message",
        "steps",
    ]
    assert s["steps"][1] == {
        "name": "join",
        "type": None,
        "phase": "Running",
        "attempt": 2,
        "jobName": None,
        "reason": None,
        "message": None,
        "outputs": None,
    }


def test_a_new_pipeline_without_status() -> None:
    fresh = {"metadata": {"name": "new"}, "spec": {"steps": [{"name": "a"}, {"name": "b"}]}}
    row = render(formatting.pipelines_table([fresh], NOW)).splitlines()[1]
    assert row.split() == ["new", "Pending", "0/2", "-", "-"]


def _pod(name: str, index: int, phase: str, created: str, start: str | None = None) -> dict[str, object]:
    return {
        "metadata": {
            "name": name,
            "creationTimestamp": created,
            "annotations": {formatting.INDEX_ANNOTATION: str(index)},
        },
        "spec": {"nodeName": f"worker-0{index + 1}"},
        "status": {"phase": phase, "startTime": start},
    }


def test_worker_rows_take_the_newest_pod_per_index_and_estimate_time_left() -> None:
    now = datetime(2026, 1, 1, 0, 10, tzinfo=UTC)
    pods = [
        _pod("p-0-a", 0, "Failed", "2026-01-01T00:00:00Z"),
        _pod("p-0-b", 0, "Running", "2026-01-01T00:01:00Z", "2026-01-01T00:06:00Z"),
        _pod("p-1-a", 1, "Succeeded", "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z"),
        _pod("p-2-a", 2, "Pending", "2026-01-01T00:00:00Z"),
    ]
    rows = formatting.worker_rows(pods, {"p-0-b": 0.25}, now)
    assert [(r["worker"], r["pod"], r["phase"], r["attempts"]) for r in rows] == [
        (0, "p-0-b", "Running", 2),
        (1, "p-1-a", "Succeeded", 1),
        (2, "p-2-a", "Pending", 1),
    ]
    assert rows[0]["eta"] == formatting.quantities.format_duration(240 * 3)  # 4 min for 25%: 12 min left
    assert rows[1]["progress"] == 1.0
    assert rows[2]["eta"] == "-"
    assert formatting.eta("2026-01-01T00:00:00Z", None, now) == "-"
    text = Console(width=120, record=True)
    text.print(formatting.workers_table("insights", rows))
    out = text.export_text()
    assert "insights: 1/3 workers done" in out
    assert " 25.0%" in out


def test_why_a_pod_of_a_running_step_waits() -> None:
    def pod(phase: str, **status: object) -> dict[str, object]:
        return {"status": {"phase": phase, **status}}

    unschedulable = {
        "type": "PodScheduled",
        "status": "False",
        "reason": "Unschedulable",
        "message": "0/4 nodes",
    }
    assert formatting.pod_waiting(pod("Running")) is None
    assert formatting.pod_waiting(pod("Pending", conditions=[unschedulable])) == "not scheduled: 0/4 nodes"
    pulling = {"state": {"waiting": {"reason": "ImagePullBackOff", "message": 'pull "x:1" failed'}}}
    assert formatting.pod_waiting(pod("Pending", containerStatuses=[pulling])) == (
        'ImagePullBackOff: pull "x:1" failed'
    )
    creating = {"state": {"waiting": {"reason": "ContainerCreating"}}}
    assert formatting.pod_waiting(pod("Pending", containerStatuses=[creating])).startswith(  # type: ignore[union-attr]
        "ContainerCreating (if it lasts: a Secret or volume it mounts may be missing"
    )
    assert formatting.pod_waiting(pod("Pending")) == "pending"


def test_sequence_detail() -> None:
    obj = {
        "metadata": {"name": "nightly"},
        "spec": {"containers": [{"name": "a"}, {"name": "b"}, {"name": "c"}]},
        "status": {
            "phase": "Failed",
            "message": "job 1 (b) failed: Error",
            "progress": {"step": "2/3"},
            "steps": [
                {
                    "name": "a",
                    "phase": "Completed",
                    "startTime": "2026-01-01T00:00:00Z",
                    "completionTime": "2026-01-01T00:00:05Z",
                    "output": "rows=3\nmore",
                },
                {"name": "b", "phase": "Failed", "attempt": 2, "message": "boom"},
                {"name": "c", "phase": "Skipped", "message": "skipped: job 1 (b) failed"},
            ],
        },
    }
    lines = [str(t) for t in formatting.sequence_detail(obj, datetime(2026, 1, 1, tzinfo=UTC))]
    assert lines == [
        "SequentialJob: nightly",
        "Phase: Failed",
        "Step: 2/3",
        "Message: job 1 (b) failed: Error",
        "",
        "✅ a (completed in 5s)",
        "    output: rows=3",
        "❌ b (run 2) (boom)",
        "⏭ c (skipped: job 1 (b) failed)",
    ]


def test_events_keep_the_order_they_were_sent_in_within_a_second() -> None:
    same = "2026-01-01T00:00:05Z"
    events = [
        {
            "type": "Normal",
            "reason": "JobStarted",
            "lastTimestamp": same,
            "eventTime": "2026-01-01T00:00:05.000200Z",
        },
        {
            "type": "Normal",
            "reason": "JobCompleted",
            "lastTimestamp": same,
            "eventTime": "2026-01-01T00:00:05.000100Z",
        },
        {"type": "Normal", "reason": "Older", "lastTimestamp": "2026-01-01T00:00:01Z"},
    ]
    con = Console(width=200, record=True)
    con.print(formatting.events_table(events, datetime(2026, 1, 1, 0, 1, tzinfo=UTC)))
    reasons = [line.split()[2] for line in con.export_text().splitlines()[2:]]
    assert reasons == ["Older", "JobCompleted", "JobStarted"]
