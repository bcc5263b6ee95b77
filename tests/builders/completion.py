"""Drives the generated bash completion script for real, as a shell would."""

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
