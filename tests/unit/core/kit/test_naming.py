"""Pins child names (core/kit/naming.py): short names are kept as they are; names over 63
characters are shortened to exactly 63 with a stable hash of the whole name, stay DNS-1123 labels,
and never collide where plain truncation would (the attempts of a long step, long siblings)."""

from __future__ import annotations

import re

import pytest

from dataworks.core.kit import naming

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
P63 = "p" * 63
S50 = "s" * 50  # the longest step name the API accepts


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        pytest.param("nightly-load", "nightly-load", id="short-kept"),
        pytest.param("x" * 63, "x" * 63, id="exactly-63-kept"),
        pytest.param("x" * 64, "x" * 54 + "-7ce10097", id="64-shortened"),
        pytest.param("ab-" * 30, "ab-" * 17 + "ab-ddd85945", id="dash-before-hash-not-doubled"),
    ],
)
def test_shorten(name: str, expected: str) -> None:
    got = naming.shorten(name)
    assert got == expected
    assert len(got) <= naming.MAX_NAME
    assert DNS1123_LABEL.match(got), got


@pytest.mark.parametrize(
    ("pipeline", "step", "attempt", "expected"),
    [
        pytest.param("nightly", "load", 1, "nightly-load", id="first-attempt-bare"),
        pytest.param("nightly", "load", 0, "nightly-load", id="attempt-0-bare"),
        pytest.param("nightly", "load", 2, "nightly-load-a2", id="retry-suffix"),
        pytest.param("nightly", "load", 12, "nightly-load-a12", id="two-digit-attempt"),
    ],
)
def test_job_name(pipeline: str, step: str, attempt: int, expected: str) -> None:
    assert naming.job_name(pipeline, step, attempt) == expected


@pytest.mark.parametrize(
    "names",
    [
        pytest.param([naming.job_name(P63, S50, a) for a in range(1, 21)], id="attempts-of-a-long-step"),
        pytest.param([naming.job_name("p" * 40, f"{'s' * 30}-{i}", 1) for i in range(200)], id="siblings"),
        pytest.param([naming.job_name(f"{'p' * 60}{i}", "load", 1) for i in range(200)], id="pipelines"),
        pytest.param([naming.shorten("x" * n) for n in range(64, 200)], id="lengths"),
        pytest.param(
            [naming.job_name(P63, S50, 1), naming.config_map_name(P63 + "-" + S50)], id="job-vs-configmap"
        ),
    ],
)
def test_long_names_are_63_characters_and_never_collide(names: list[str]) -> None:
    assert all(len(n) == naming.MAX_NAME for n in names), [n for n in names if len(n) != naming.MAX_NAME]
    assert all(DNS1123_LABEL.match(n) for n in names)
    assert len(set(names)) == len(names)


def test_long_names_are_stable_and_keep_a_readable_prefix() -> None:
    first = naming.job_name(P63, S50, 2)
    assert first == naming.job_name(P63, S50, 2)  # the same Job on every reconcile: adopt, not duplicate
    assert first.startswith("p" * 54)
    assert first != naming.job_name(P63, S50, 3)


@pytest.mark.parametrize(
    ("pipeline", "expected"),
    [
        pytest.param("nightly", "nightly-steps", id="short"),
        pytest.param("n" * 57, "n" * 57 + "-steps", id="exactly-63"),
    ],
)
def test_config_map_name(pipeline: str, expected: str) -> None:
    assert naming.config_map_name(pipeline) == expected
