"""Pipelines and SequentialJobs shown in the docs are valid for the operator's own validation."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from dataworks.api import pipelinetemplate as tapi
from dataworks.core.pipelines import templates, validation
from dataworks.core.sequentialjobs import validation as sequence_validation

DOCS = Path(__file__).resolve().parents[2] / "docs"


def pipelines_in(path: Path, kind: str = "Pipeline") -> list[dict[str, object]]:
    blocks = re.findall(r"```yaml\n(.*?)```", path.read_text(), flags=re.S)
    docs = [d for b in blocks for d in yaml.safe_load_all(b)]
    return [d for d in docs if isinstance(d, dict) and d.get("kind") == kind]


@pytest.mark.parametrize("doc", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_documented_pipelines_validate(doc: Path) -> None:
    found = {t["metadata"]["name"]: t for t in pipelines_in(doc, "PipelineTemplate")}  # type: ignore[index]
    for obj in pipelines_in(doc):
        spec: dict[str, Any] = obj["spec"]  # type: ignore[assignment]
        if "template" in spec:  # expanded with the template the same page shows, as the operator does
            tpl = tapi.PipelineTemplateSpec.model_validate(found[spec["template"]]["spec"])
            spec, _, problems = templates.expand(spec, tpl, spec["template"])
            assert problems == []
            assert spec is not None
        validated, errors = validation.validate_raw(spec)
        assert errors == [], [str(e) for e in errors]
        assert validated is not None


def test_documented_sequential_jobs_validate() -> None:
    found = pipelines_in(DOCS / "sequentialjob.md", "SequentialJob")
    assert len(found) == 2
    for obj in found:
        validated, errors = sequence_validation.validate_document(obj)
        assert errors == [], [str(e) for e in errors]
        assert validated is not None


def test_the_documented_seed_example_is_the_example_a_test_runs() -> None:
    example = DOCS.parent / "examples" / "sequentialjob" / "data-processing-pipeline.yaml"
    documented = pipelines_in(DOCS / "sequentialjob.md", "SequentialJob")[0]
    assert documented == yaml.safe_load(example.read_text())


def test_the_documented_labelled_job_is_the_example_a_test_runs() -> None:
    example = DOCS.parent / "examples" / "jobhandler" / "nightly-export.yaml"
    (documented,) = pipelines_in(DOCS / "jobhandler.md", "Job")
    assert documented == yaml.safe_load(example.read_text())
    (pipeline,) = pipelines_in(DOCS / "jobhandler.md")
    assert pipeline["spec"]["archiveLogs"] is True  # type: ignore[index]


def test_the_documented_training_job_is_the_example_a_test_runs() -> None:
    example = DOCS.parent / "examples" / "training" / "test-job.yaml"
    (documented,) = pipelines_in(DOCS / "trainingjob.md", "TrainingJob")
    assert documented == yaml.safe_load(example.read_text())


def test_the_documented_conditional_pipeline_is_the_example_a_test_runs() -> None:
    example = DOCS.parent / "examples" / "conditional.yaml"
    (documented,) = [
        p for p in pipelines_in(DOCS / "pipeline.md") if p["metadata"] == {"name": "orders-nightly"}
    ]
    assert documented == yaml.safe_load(example.read_text())


def test_the_documented_template_is_the_example_a_test_runs() -> None:
    example = list(yaml.safe_load_all((DOCS.parent / "examples" / "template.yaml").read_text()))
    documented = pipelines_in(DOCS / "pipeline.md", "PipelineTemplate")
    assert documented == [example[0]]
    assert [p for p in pipelines_in(DOCS / "pipeline.md") if p["metadata"] == example[1]["metadata"]] == [
        example[1]
    ]


def test_the_documented_schedule_is_the_example_a_test_applies() -> None:
    example = yaml.safe_load((DOCS.parent / "examples" / "scheduled.yaml").read_text())
    assert pipelines_in(DOCS / "pipeline.md", "ScheduledPipeline") == [example]


def test_the_documented_dependency_is_the_example_a_test_runs() -> None:
    example = yaml.safe_load((DOCS.parent / "examples" / "daily-report.yaml").read_text())
    assert [p for p in pipelines_in(DOCS / "pipeline.md") if p["metadata"] == example["metadata"]] == [
        example
    ]
