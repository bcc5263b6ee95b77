"""dataworks-operator refuses to start, in one line and at once, when it cannot run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

OPERATOR = str(Path(sys.executable).parent / "dataworks-operator")


def start(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"KUBECONFIG", "KUBERNETES_SERVICE_HOST"}}
    env["HOME"] = str(tmp_path)  # no ~/.kube/config
    return subprocess.run(
        [OPERATOR, "--health-port", "0", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_without_credentials_it_says_what_it_looked_for(tmp_path: Path) -> None:
    out = start(tmp_path)
    assert out.returncode == 1
    assert out.stderr.strip().splitlines() == [
        "dataworks-operator: no cluster credentials: no kubeconfig: none given, $KUBECONFIG is unset, "
        "~/.kube/config does not exist, and this is not a pod (no KUBERNETES_SERVICE_HOST or ServiceAccount "
        "token); pass --kubeconfig"
    ]


def test_a_bad_config_file_is_named_before_anything_starts(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("pipelines:\n  workerImage: [not, a, string]\n")
    out = start(tmp_path, "--config", str(config))
    assert out.returncode == 1
    assert f"invalid --config {config}" in out.stderr
    assert "pipelines.workerImage: Input should be a valid string" in out.stderr
