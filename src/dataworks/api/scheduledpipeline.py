"""The ScheduledPipeline resource, dataworks.io/v1 (pure layer).

A schedule that creates Pipelines, as a CronJob creates Jobs: one or more cron
expressions in a time zone, a template (with parameters) or an inline pipeline
spec, a concurrency policy, a starting deadline, suspend, and history limits.
Parameters and the inline spec may use the scheduled time: `{{.scheduledDate}}`
(2026-12-02), `{{.scheduledTime}}` (RFC 3339, UTC) and
`{{.scheduledTimeLocal}}` (RFC 3339 in the schedule's time zone).
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator

from dataworks.api.meta import Condition, KindInfo, Model, StatusModel

KIND = "ScheduledPipeline"
PLURAL = "scheduledpipelines"
OWNER_LABEL = "dataworks.io/scheduledpipeline"
SCHEDULED_AT = "dataworks.io/scheduled-at"  # annotation on each run: the time it was scheduled for
MAX_NAME = 52  # the run's name adds "-" and a 10-character time


class ScheduledPipelineSpec(Model):
    """When to run, and what."""

    schedule: list[str] = Field(
        min_length=1,
        max_length=20,
        description='Cron expressions (five fields, as CronJob), e.g. ["0 2 * * *"]; a run is due '
        "at each time any of them names.",
    )
    time_zone: str = Field("UTC", description="IANA time zone the cron expressions are read in.")
    template: str | None = Field(None, min_length=1, description="A PipelineTemplate to run.")
    parameters: dict[str, Any] | None = Field(
        None, description="The template's parameters; {{.scheduledDate}} and the like are filled in."
    )
    pipeline: dict[str, Any] | None = Field(
        None, description="An inline Pipeline spec to run instead of a template (placeholders too)."
    )
    concurrency_policy: Literal["Allow", "Forbid", "Replace"] = Field(
        "Allow",
        description="When a run is due while another is unfinished: run both (Allow), skip the new "
        "one (Forbid), or cancel the old one (Replace).",
    )
    starting_deadline_seconds: int | None = Field(
        None, ge=1, description="A run not started within this long after its time is skipped."
    )
    suspend: bool = Field(False, description="No new runs; running ones go on.")
    successful_history_limit: int = Field(3, ge=0, le=100, description="Completed runs kept.")
    failed_history_limit: int = Field(1, ge=0, le=100, description="Failed or cancelled runs kept.")

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "has(self.template) != has(self.pipeline)",
            "message": "give a template or an inline pipeline, one of the two",
            "fieldPath": ".template",
        },
        {
            "rule": "has(self.template) || !has(self.parameters)",
            "message": "parameters fill in a template: set template",
            "fieldPath": ".parameters",
        },
    ]

    @field_validator("time_zone")
    @classmethod
    def _zone(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError) as e:
            raise ValueError(f"unknown time zone {v!r} (an IANA name such as Europe/Berlin)") from e
        return v


class ScheduledPipelineStatus(StatusModel):
    """What the schedule did last, and will do next."""

    last_schedule_time: str | None = Field(None, description="The time the latest run was due.")
    next_schedule_time: str | None = None
    last_successful_time: str | None = Field(None, description="When the latest completed run ended.")
    active: list[str] = Field(default_factory=list, description="Runs not yet finished.")
    observed_generation: int | None = None
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


class ScheduledPipeline(Model):
    """Creates Pipelines on a schedule."""

    api_version: str = "dataworks.io/v1"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: ScheduledPipelineSpec
    status: ScheduledPipelineStatus | None = None

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": f"size(self.metadata.name) <= {MAX_NAME}",
            "message": f"metadata.name must be at most {MAX_NAME} characters: each run is named "
            "<name>-<minutes since 1970>, at most 63",
        }
    ]


INFO = KindInfo(
    kind=KIND,
    plural=PLURAL,
    root=ScheduledPipeline,
    spec=ScheduledPipelineSpec,
    status=ScheduledPipelineStatus,
    short_names=("spl",),
    printer_columns=(
        {"name": "Schedule", "type": "string", "jsonPath": ".spec.schedule[0]"},
        {"name": "Suspend", "type": "boolean", "jsonPath": ".spec.suspend"},
        {"name": "Last", "type": "date", "jsonPath": ".status.lastScheduleTime"},
        {"name": "Next", "type": "string", "jsonPath": ".status.nextScheduleTime"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    owner_label=OWNER_LABEL,
)
