"""Controllers that would fight over objects are refused, naming both; and the operator runtime
refuses a child kind it cannot watch."""

from __future__ import annotations

from collections.abc import Mapping

import pytest

from dataworks.api import pipeline as api
from dataworks.api.config import OperatorConfig
from dataworks.controllers import base as controller
from dataworks.controllers.pipelines import PipelineController
from tests.builders import widgets


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        pytest.param(None, None, True, id="both-all"),
        pytest.param(None, {"x": "1"}, True, id="one-all"),
        pytest.param({"x": "1"}, {"x": "1"}, True, id="same"),
        pytest.param({"x": "1"}, {"x": "2"}, False, id="same-key-other-value"),
        pytest.param({"x": "1"}, {"y": "1"}, True, id="disjoint-keys-can-both-match"),
        pytest.param({"x": "1", "y": "2"}, {"x": "1", "y": "3"}, False, id="one-differing-key"),
    ],
)
def test_overlapping(a: Mapping[str, str] | None, b: Mapping[str, str] | None, overlap: bool) -> None:
    assert controller.overlapping(a, b) is overlap
    assert controller.overlapping(b, a) is overlap


class Labelled(widgets.WidgetController):
    def __init__(self, selector: Mapping[str, str] | None) -> None:
        self.selector = selector


def test_two_controllers_of_one_kind_need_disjoint_selectors() -> None:
    controller.check([Labelled({"tier": "a"}), Labelled({"tier": "b"})])
    with pytest.raises(ValueError, match="both reconcile Widget with overlapping selectors"):
        controller.check([Labelled({"tier": "a"}), Labelled(None)])


def test_different_kinds_never_overlap() -> None:
    controller.check([PipelineController(OperatorConfig()), widgets.WidgetController()])
    assert PipelineController.info is api.INFO


def test_a_child_kind_the_runtime_cannot_watch_is_refused() -> None:
    from dataworks.operator.runtime import runtime

    class Odd(widgets.WidgetController):
        owns = ("CronJob",)

    with pytest.raises(KeyError, match="CronJob is not a child kind"):
        runtime.check([Odd()])


def test_a_status_that_cannot_be_read_is_rebuilt_not_fatal() -> None:
    assert controller.read_status(api.PipelineStatus, None) is None
    assert controller.read_status(api.PipelineStatus, {}) is None
    assert controller.read_status(api.PipelineStatus, {"phase": "NoSuchPhase"}) is None
    got = controller.read_status(api.PipelineStatus, {"phase": "Running", "fromANewerOperator": 1})
    assert got is not None
    assert got.phase == "Running"
