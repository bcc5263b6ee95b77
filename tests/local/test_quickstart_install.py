"""`make quickstart` on a fresh virtualenv: the runtime dependencies alone run the quickstart.

README's first command must install only what the run needs (about 350 MB, not
the 880 MB with the test and dev extras). This runs the Makefile target itself
into a new virtualenv (no system site-packages; pip's wheel cache makes it quick)
and checks that the quickstart completes there and no test or dev tool came along.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Test and dev extras, and what they pull in; none may reach the quickstart's install.
NOT_INSTALLED = (
    *("pytest", "moto", "ruff", "mypy", "importlinter", "kubernetes_validate", "s3fs", "torch"),
    *("numpy", "redis", "psutil", "matplotlib"),  # the streams extra
)


def test_make_quickstart_installs_no_test_or_dev_extras(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    env = {k: v for k, v in os.environ.items() if k not in {"VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME"}}
    env["DATAWORKS_WORKDIR"] = str(tmp_path / "work")
    base_python = os.path.realpath(sys.executable)  # the interpreter behind this test's own venv
    out = subprocess.run(
        ["make", "-C", str(ROOT), "quickstart", f"VENV={venv}", f"PYTHON={base_python}"],
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "PipelineCompleted: 8 of 8 steps completed" in out.stdout, out.stdout
    assert "include-system-site-packages = false" in (venv / "pyvenv.cfg").read_text()
    probe = "import importlib.util as u, sys; print(' '.join(m for m in sys.argv[1:] if u.find_spec(m)))"
    found = subprocess.run(
        [str(venv / "bin" / "python"), "-c", probe, *NOT_INSTALLED],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "", f"the quickstart's install has test/dev packages: {found.stdout}"
    assert not (venv / ".installed").exists()  # the marker of `make install` (runtime + extras)
    # The stream commands say which extra they need, instead of an ImportError's traceback.
    streams = subprocess.run(
        [str(venv / "bin" / "dataworks"), "generate", "--count", "1", "-o", "-"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert streams.returncode == 2, streams.stderr
    assert "needs the streams extra" in streams.stderr
    assert "pip install 'dataworks[streams]'" in streams.stderr
