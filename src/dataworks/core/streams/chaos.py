"""Random faults for a stream benchmark (pure layer): the seconds they strike, drawn from a seed.

For each action, in a fixed order, gaps follow one another from `after` on: the action's least
gap (api/benchscenario.least_gap) plus an exponential draw with the rest of its mean. So
faults of one action never overlap (a restart is over before the next), their gaps average
`every[action]`, and one seed gives one sequence, on any machine: Python's `random` is stable
across versions for a given seed.
"""

from __future__ import annotations

import random

from dataworks.api.benchscenario import Fault, RandomFaults, Scenario, least_gap


def draw(chaos: RandomFaults, duration: float) -> list[Fault]:
    """The faults within `duration` seconds of the producer's start, in order of time."""
    rng = random.Random(chaos.seed)
    out: list[Fault] = []
    for action in sorted(chaos.every):  # a fixed order: the same draws for the same seed
        least = least_gap(action, chaos.seconds)
        spread = chaos.every[action] - least
        t = chaos.after
        while True:
            t += least + rng.expovariate(1.0 / spread)
            if t >= duration:
                break
            out.append(Fault(at=round(t, 3), action=action, seconds=chaos.seconds))
    return sorted(out, key=lambda f: f.at)


def all_faults(scenario: Scenario) -> list[Fault]:
    """The scenario's given faults and its drawn ones, in order of time."""
    drawn = draw(scenario.random_faults, scenario.duration_seconds) if scenario.random_faults else []
    return sorted([*scenario.faults, *drawn], key=lambda f: f.at)
