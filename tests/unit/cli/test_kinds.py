"""The CLI reads kinds from the registry: every spelling kubectl accepts, clear errors, verbs per kind."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from rich.console import Console

from dataworks.api import pipeline as api
from dataworks.cli import formatting, kinds
from tests.builders import widgets


@pytest.mark.parametrize(
    "spelling", ["Pipeline", "pipeline", "pipelines", "pl", "PL", "pipelines.dataworks.io"]
)
def test_every_kubectl_spelling_resolves(spelling: str) -> None:
    assert kinds.resolve(spelling) is api.INFO


def test_an_unknown_kind_names_the_known_ones() -> None:
    with pytest.raises(
        kinds.UnknownKind, match=r'no dataworks resource type "pipes"; known types: pipelines \(pl\)'
    ):
        kinds.resolve("pipes")


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
    assert kinds.help_of("suspend").endswith("(Pipeline)")


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
