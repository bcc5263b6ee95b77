"""The generated completion script is valid bash and completes verbs and flags for real."""

from __future__ import annotations

import subprocess

from dataworks.cli import completing, main


def complete(words: list[str], env: dict[str, str] | None = None) -> list[str]:
    script = completing.script(main.parser(), "bash")
    line = " ".join(words)
    probe = (
        f"{script}\nCOMP_WORDS=({line}); COMP_CWORD={len(words) - 1}; _pipeline_ctl; "
        'printf "%s\\n" "${COMPREPLY[@]}"'
    )
    out = subprocess.run(["bash", "-c", probe], capture_output=True, text=True, check=True, env=env)
    return out.stdout.split()


def test_verbs_and_flags_complete() -> None:
    assert complete(["pipeline-ctl", "st"]) == ["status"]
    assert complete(["pipeline-ctl", "re"]) == ["resume", "retry"]
    assert "--watch" in complete(["pipeline-ctl", "status", "--w"])
    assert complete(["pipeline-ctl", "logs", "--fol"]) == ["--follow"]
    assert "--max-parallel" in complete(["pipeline-ctl", "run", "--"])
