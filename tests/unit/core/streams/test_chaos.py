"""Random faults for a stream benchmark: drawn from a seed, spaced, and averaging their mean."""

from __future__ import annotations

import itertools
import statistics

import pytest
from pydantic import ValidationError

from dataworks.api.benchscenario import RandomFaults, Scenario
from dataworks.core.streams.chaos import all_faults, draw


def faults(**kw: object) -> RandomFaults:
    return RandomFaults.model_validate({"every": {"killConsumer": 10}} | kw)


def test_one_seed_gives_one_sequence_and_another_seed_another() -> None:
    chaos = faults(seed=3, every={"killConsumer": 8, "restartRedis": 20})
    first = draw(chaos, 300)
    assert first == draw(chaos, 300)
    assert first != draw(faults(seed=4, every={"killConsumer": 8, "restartRedis": 20}), 300)
    assert {f.action for f in first} == {"killConsumer", "restartRedis"}


@pytest.mark.parametrize(
    ("every", "seconds", "least"),
    [
        ({"killConsumer": 5}, 2.0, 1.0),  # the replacement has started
        ({"addConsumer": 1.5}, 2.0, 1.0),
        ({"restartRedis": 6}, 2.0, 3.0),  # the restart is over, and a second has passed
        ({"pauseProducer": 12}, 8.0, 9.0),
    ],
)
def test_faults_of_one_action_are_spaced_and_average_their_mean(
    every: dict[str, float], seconds: float, least: float
) -> None:
    ((action, mean),) = every.items()
    drawn = draw(faults(every=every, seconds=seconds, after=0), 20_000)
    times = [f.at for f in drawn]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert min(gaps) >= least - 0.001
    assert statistics.mean(gaps) == pytest.approx(mean, rel=0.08)
    assert all(f.action == action and f.seconds == seconds for f in drawn)


def test_faults_fall_between_after_and_the_end_of_the_run() -> None:
    drawn = draw(faults(every={"killConsumer": 2, "pauseProducer": 5}, after=10), 60)
    assert drawn
    assert all(10 < f.at < 60 for f in drawn)
    assert [f.at for f in drawn] == sorted(f.at for f in drawn)
    assert draw(faults(after=100), 60) == []  # none after the run


def test_given_and_drawn_faults_run_together_in_order_of_time() -> None:
    scenario = Scenario.model_validate(
        {
            "name": "mixed",
            "durationSeconds": 60,
            "faults": [{"at": 30, "action": "restartRedis"}],
            "randomFaults": {"seed": 1, "every": {"killConsumer": 10}},
        }
    )
    together = all_faults(scenario)
    assert [f.at for f in together] == sorted(f.at for f in together)
    assert sum(f.action == "restartRedis" for f in together) == 1
    assert sum(f.action == "killConsumer" for f in together) >= 2
    assert scenario.actions() == {"restartRedis", "killConsumer"}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"every": {"restartRedis": 3}}, "every.restartRedis (3 s) must be above 3 s"),
        ({"every": {"killConsumer": 1}}, "every.killConsumer (1 s) must be above 1 s"),
        ({"every": {"unplug": 5}}, "every.unplug"),
        ({"every": {}}, "every"),
        ({"every": {"killConsumer": 5}, "seconds": 0}, "seconds"),
    ],
)
def test_bad_random_faults_name_the_field(body: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError) as e:
        RandomFaults.model_validate(body)
    assert message in str(e.value)
