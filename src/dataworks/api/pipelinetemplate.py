"""The PipelineTemplate resource, dataworks.io/v1 (pure layer).

A reusable pipeline with typed parameters. Its steps are written as a
Pipeline's, with `{{.name}}` placeholders (the seed's Go-template spelling;
`{{ .name }}` too) anywhere in their values: names, dependsOn, config and
container fields. They are free-form here, because a placeholder makes a value
the Pipeline schema would refuse (`parallelism: "{{.parallelism}}"`); the
expanded steps are validated as any Pipeline's (core.pipelines.templates).
A Pipeline uses a template with `spec.template` and `spec.parameters`.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from dataworks.api.meta import KindInfo, Model, StatusModel

KIND = "PipelineTemplate"
PLURAL = "pipelinetemplates"

ParameterType = Literal["string", "integer", "number", "boolean", "enum"]
PARAMETER_NAME = r"^[A-Za-z_][A-Za-z0-9_]*$"


class Parameter(Model):
    """One typed parameter of a template."""

    name: str = Field(
        min_length=1, max_length=63, pattern=PARAMETER_NAME, description="Used as {{.name}} in the steps."
    )
    type: ParameterType = Field("string", description="string, integer, number, boolean or enum.")
    required: bool = Field(False, description="A Pipeline must give it (a default makes no sense then).")
    default: Any = Field(None, description="The value when a Pipeline gives none.")
    values: list[str] | None = Field(None, max_length=100, description="The allowed values of an enum.")
    description: str | None = Field(None, max_length=1024)

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.type) || self.type != 'enum' || (has(self.values) && size(self.values) > 0)",
            "message": "an enum parameter lists its values",
            "fieldPath": ".values",
        },
    ]

    @model_validator(mode="after")
    def _required_has_no_default(self) -> Parameter:
        # Not a CEL rule: the API server's CEL cannot see a field of any type (`default`).
        if self.required and self.default is not None:
            raise ValueError("a required parameter has no default")
        return self


class PipelineTemplateSpec(Model):
    """Parameters and the steps they fill in."""

    parameters: list[Parameter] = Field(default_factory=list, max_length=100)
    steps: list[dict[str, Any]] = Field(
        min_length=1,
        max_length=500,
        description="Steps as a Pipeline writes them, with {{.name}} placeholders in their values.",
    )


class PipelineTemplateStatus(StatusModel):
    """A template has no status of its own."""


class PipelineTemplate(Model):
    """A reusable pipeline with typed parameters."""

    api_version: str = "dataworks.io/v1"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: PipelineTemplateSpec
    status: PipelineTemplateStatus | None = None


INFO = KindInfo(
    kind=KIND,
    plural=PLURAL,
    root=PipelineTemplate,
    spec=PipelineTemplateSpec,
    status=PipelineTemplateStatus,
    short_names=("plt",),
    printer_columns=({"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},),
)
