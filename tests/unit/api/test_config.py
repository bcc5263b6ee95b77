"""The operator's configuration file: its keys, its errors, and its documentation."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from dataworks.api.config import OperatorConfig, PipelinesConfig, StreamingJobsConfig, TrainingJobsConfig
from dataworks.api.jobhandler import JobHandlerConfig
from dataworks.operator.main import load_config

REPO = Path(__file__).resolve().parents[3]


def test_the_shipped_config_map_loads(tmp_path: Path) -> None:
    cm = yaml.safe_load((REPO / "deploy" / "manager" / "config.yaml").read_text())
    path = tmp_path / "config.yaml"
    path.write_text(cm["data"]["config.yaml"])
    config = load_config(str(path))
    assert config.pipelines.step_events is True
    assert config.notifications_namespace == "dataworks-system"


def test_a_misspelt_key_names_the_file_and_the_key(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("pipelines:\n  stepEvent: false\n  workloadClasses: {big: {limit: {cpu: '1'}}}\n")
    with pytest.raises(SystemExit) as e:
        load_config(str(path))
    message = str(e.value)
    assert str(path) in message
    assert "pipelines.stepEvent: Extra inputs are not permitted" in message
    assert "pipelines.workloadClasses.big.limit" in message


def test_every_key_is_documented_once() -> None:
    text = (REPO / "docs" / "operations.md").read_text()
    section = text.split("## Configuration", 1)[1].split("\n## ", 1)[0]
    documented = re.findall(r"^\| `([\w.]+)` \|", section, flags=re.M)
    keys = [f.alias or name for name, f in OperatorConfig.model_fields.items()]
    keys += [f"pipelines.{f.alias or name}" for name, f in PipelinesConfig.model_fields.items()]
    keys += [f"jobHandler.{f.alias or name}" for name, f in JobHandlerConfig.model_fields.items()]
    keys += [f"trainingJobs.{f.alias or name}" for name, f in TrainingJobsConfig.model_fields.items()]
    keys += [f"streamingJobs.{f.alias or name}" for name, f in StreamingJobsConfig.model_fields.items()]
    assert sorted(documented) == sorted(keys)


def test_every_key_has_a_description() -> None:
    for model in (OperatorConfig, PipelinesConfig):
        for name, field in model.model_fields.items():
            assert field.description, f"{model.__name__}.{name} has no description"


def test_a_key_that_moved_into_a_section_says_where(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("stepEvents: false\nworkerImage: x\n")
    with pytest.raises(SystemExit) as e:
        load_config(str(path))
    assert "stepEvents, workerImage belong in the pipelines section now: indent under `pipelines:`" in str(
        e.value
    )
