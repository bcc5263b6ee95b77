"""The CLI reads kinds from the registry: every spelling kubectl accepts, clear errors, verbs per kind."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from rich.console import Console

from dataworks.api import pipeline as api
from dataworks.api import sequentialjob
from dataworks.cli import formatting, kinds
from tests.builders import widgets

SEQ = [
    {"name": "a", "phase": "Completed"},
    {"name": "b", "phase": "Failed"},
    {"name": "c", "phase": "Skipped"},
]
DONE = [{"name": n, "phase": "Completed"} for n in "abc"]


@pytest.mark.parametrize(
    "spelling", ["Pipeline", "pipeline", "pipelines", "pl", "PL", "pipelines.dataworks.io"]
)
def test_every_kubectl_spelling_resolves(spelling: str) -> None:
    assert kinds.resolve(spelling) is api.INFO


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(
        kinds.UnknownKind,
        match=r'no dataworks resource type "pipes"; known types: '
        r"pipelines \(pl\), pipelinetemplates \(plt\), scheduledpipelines \(spl\), sequentialjobs \(sqj\), "
        r"trainingjobs \(tj\), streamingjobs \(stj\)$",
    ):
        kinds.resolve("pipes")


@pytest.mark.parametrize("spelling", ["SequentialJob", "sequentialjobs", "sqj", "SQJ"])
def test_sequential_jobs_resolve(spelling: str) -> None:
    assert kinds.resolve(spelling) is sequentialjob.INFO
    assert kinds.split_ref(f"{spelling}/nightly") == (sequentialjob.INFO, "nightly")


def test_a_registered_test_kind_resolves_and_refs_split() -> None:
    registry = widgets.registry()
    assert kinds.resolve("wdg", registry) is widgets.INFO
    assert kinds.split_ref("widget/w1", registry) == (widgets.INFO, "w1")
    assert kinds.split_ref("nightly", registry) == (api.INFO, "nightly")  # a bare name is a pipeline


def test_action_verbs_come_from_the_table() -> None:
    assert kinds.verbs() == ["cancel", "suspend", "resume"]
    cancel = kinds.action("Pipeline", "cancel")
    assert cancel is not None
    assert cancel.patch == {"shutdown": "Terminate"}
    assert kinds.action("Widget", "cancel") is None
    assert kinds.help_of("suspend").endswith("(Pipeline, SequentialJob, TrainingJob)")
    assert kinds.help_of("cancel").endswith("(Pipeline)")
    for verb, spec in (("suspend", {"suspend": True}), ("resume", {"suspend": False})):
        act = kinds.action("SequentialJob", verb)
        assert act is not None
        assert act.patch == spec
    assert kinds.action("SequentialJob", "cancel") is None


@pytest.mark.parametrize(
    ("status", "step", "rerun"),
    [
        pytest.param({"phase": "Failed", "steps": SEQ}, None, ["b", "c"], id="from-the-failed-step"),
        pytest.param({"phase": "Failed", "steps": SEQ}, "a", ["a", "b", "c"], id="from-a-named-step"),
        pytest.param({"phase": "Completed", "steps": DONE}, "c", ["c"], id="named-last"),
    ],
)
def test_what_a_sequence_retry_reruns(status: dict[str, Any], step: str | None, rerun: list[str]) -> None:
    assert kinds.RETRIES["SequentialJob"].rerun(status, step) == rerun


@pytest.mark.parametrize(
    ("status", "message"),
    [
        pytest.param({"phase": "Running", "steps": SEQ}, "has not finished", id="running"),
        pytest.param({"phase": "Completed", "steps": DONE}, "completed every step", id="nothing-to-rerun"),
    ],
)
def test_a_sequence_retry_that_would_do_nothing_is_refused(status: dict[str, Any], message: str) -> None:
    with pytest.raises(kinds.CannotRetry, match=message):
        kinds.RETRIES["SequentialJob"].rerun(status, None)


def test_pipeline_retries_are_unchanged() -> None:
    retry = kinds.RETRIES["Pipeline"]
    status = {"stepStatuses": [{"name": "a", "phase": "Completed"}, {"name": "b", "phase": "Failed"}]}
    assert (retry.steps_field, retry.rerun(status, None), retry.rerun(status, "a")) == (
        "stepStatuses",
        ["b"],
        ["a"],
    )
    with pytest.raises(kinds.CannotRetry, match="no failed, skipped or cancelled step"):
        retry.rerun({"stepStatuses": [{"name": "a", "phase": "Completed"}]}, None)
    running = {"stepStatuses": [{"name": "a", "phase": "Running"}, {"name": "b", "phase": "Failed"}]}
    with pytest.raises(kinds.CannotRetry, match="step a is running; retry it once it has ended"):
        retry.rerun(running, "a")
    assert retry.rerun(running, "b") == ["b"]  # another step that ended can be retried meanwhile


def test_get_renders_printer_columns_of_any_kind() -> None:
    now = datetime(2026, 1, 1, 0, 1, tzinfo=UTC)
    rows = [
        (
            api.INFO,
            {
                "metadata": {"name": "p", "creationTimestamp": "2026-01-01T00:00:00Z"},
                "status": {"phase": "Running", "progress": "1/3"},
            },
        ),
        (
            widgets.INFO,
            {
                "metadata": {"name": "w", "creationTimestamp": "2026-01-01T00:00:30Z"},
                "status": {"phase": "Completed"},
            },
        ),
    ]
    con = Console(width=200, record=True)
    con.print(formatting.resources_table(rows, now, with_kind=True))
    lines = [ln.split() for ln in con.export_text().splitlines()]
    assert lines[0] == ["NAME", "PHASE", "STEPS", "DURATION", "AGE"]
    assert lines[1] == ["pipeline.dataworks.io/p", "Running", "1/3", "1m00s"]
    assert lines[2] == ["widget.dataworks.io/w", "Completed", "30s"]
