"""The generated completion script is valid bash and completes verbs and flags for real."""

from __future__ import annotations

from tests.builders.completion import complete


def test_verbs_and_flags_complete() -> None:
    assert complete(["pipeline-ctl", "st"]) == ["status"]
    assert complete(["pipeline-ctl", "re"]) == ["resume", "retry"]
    assert "--watch" in complete(["pipeline-ctl", "status", "--w"])
    assert complete(["pipeline-ctl", "logs", "--fol"]) == ["--follow"]
    assert "--max-parallel" in complete(["pipeline-ctl", "run", "--"])
