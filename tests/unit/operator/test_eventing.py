"""Event names: one per Event, the same on every try of it, always a valid object name."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest

from dataworks.api import pipeline as api
from dataworks.core.kit import plan as planning
from dataworks.manifests import jobs as manifests
from dataworks.operator.runtime import eventing

OWNER = manifests.Owner(info=api.INFO, name="nightly", namespace="ns", uid="uid-1")
EVENT = planning.Event("Normal", "StepCompleted", "step a completed", step="a")
AT = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")


def test_the_name_is_the_same_for_every_try_of_one_event() -> None:
    first = eventing.event_name(OWNER, EVENT, AT, 7)
    assert first == eventing.event_name(OWNER, EVENT, AT, 7)
    assert re.fullmatch(r"nightly\.[0-9a-f]{16}", first)


@pytest.mark.parametrize(
    ("owner", "event", "at", "sequence"),
    [
        (
            manifests.Owner(api.INFO, "nightly", "ns", "uid-2"),
            EVENT,
            AT,
            7,
        ),  # a new pipeline of the same name
        (OWNER, planning.Event("Normal", "StepStarted", "step a completed"), AT, 7),
        (OWNER, planning.Event("Normal", "StepCompleted", "step b completed"), AT, 7),
        (OWNER, EVENT, AT + timedelta(microseconds=1), 7),
        (OWNER, EVENT, AT, 8),  # the same Event queued twice in one instant is two Events
    ],
)
def test_any_difference_is_another_event(
    owner: manifests.Owner, event: planning.Event, at: datetime, sequence: int
) -> None:
    assert eventing.event_name(owner, event, at, sequence) != eventing.event_name(OWNER, EVENT, AT, 7)


@pytest.mark.parametrize("name", ["p", "a" * 63, "a" * 253, "a" * 235 + "-b" + "c" * 16, "x." * 120 + "y"])
def test_the_name_is_a_dns_subdomain_of_at_most_253_characters(name: str) -> None:
    got = eventing.event_name(manifests.Owner(api.INFO, name, "ns", "u"), EVENT, AT, 0)
    assert len(got) <= 253
    assert DNS_SUBDOMAIN.fullmatch(got), got


class Recorder:
    """An API client that records the Events it is asked to create."""

    def __init__(self) -> None:
        self.created: list[object] = []

    async def create(self, obj: object) -> object:
        self.created.append(obj)
        return obj


async def test_events_keep_their_queue_order_to_the_microsecond() -> None:
    client = Recorder()
    sender = eventing.EventSender(client)  # type: ignore[arg-type]
    reasons = [f"R{i}" for i in range(20)]
    for reason in reasons:  # queued in one instant, posted by several senders at once
        await sender.send(OWNER, planning.Event("Normal", reason, "m"))
    await sender.stop()
    events = client.created
    assert len(events) == len(reasons)
    by_time = sorted(events, key=lambda e: e.eventTime)  # type: ignore[attr-defined]
    assert [e.reason for e in by_time] == reasons  # type: ignore[attr-defined]
    assert len({e.eventTime for e in events}) == len(events)  # type: ignore[attr-defined]
    assert {e.action for e in events} == {"Reconcile"}  # type: ignore[attr-defined]
