"""The shared bad-input matrix: specs the API server rejects, and specs the operator and the
local executor both mark InvalidSpec, each with the message a user sees."""

from __future__ import annotations

from tests.builders.pipelines import step

# Refused with 400 (strict decoding) when created with fieldValidation=Strict; dropped otherwise.
UNKNOWN_FIELDS = [
    (
        "misspelt-depends-on",
        [step("a"), {**step("b"), "dependOn": ["a"]}],
        'strict decoding error: unknown field "spec.steps[1].dependOn"',
    ),
    (  # removed from the API: retry rules go by exit code (docs/decisions.md)
        "no-retry-reasons",
        [step("a", retry={"noRetryReasons": ["OOMKilled"]})],
        'strict decoding error: unknown field "spec.steps[0].retry.noRetryReasons"',
    ),
]

REJECTED = [
    ("duplicate-names", [step("a"), step("a")], 'Duplicate value: {"name":"a"}'),
    ("unknown-type", [{"name": "a", "type": "spark"}], 'Unsupported value: "spark"'),
    ("long-name", [step("x" * 300)], "spec.steps[0].name: Too long"),
    (
        "zero-steps",
        [],
        "spec.steps: Invalid value: a pipeline needs at least one step, or a template",
    ),
    ("self-dependency", [step("a", ["a"])], "a step cannot depend on itself"),
    ("config-not-object", [{**step("a"), "config": "text"}], 'spec.steps[0].config: Invalid value: "string"'),
    ("zero-parallelism", [step("a", parallelism=0)], "spec.steps[0].parallelism: Invalid value: 0"),
]

INVALID_SPEC = [
    (  # refused before its upstream step runs, by the rules the worker itself applies
        "unknown-quality-rule",
        [
            step("up"),
            {
                "name": "q",
                "type": "quality-check",
                "dependsOn": ["up"],
                "config": {"rules": [{"no_such_rule": ["x"]}]},
            },
        ],
        "step 'q': config.rules[0]: must name exactly one rule of not_null, unique",
    ),
    ("cycle", [step("a", ["b"]), step("b", ["a"])], "forms a cycle: a -> b -> a"),
    ("unknown-dependency", [step("a", ["ghost"])], "step 'a': dependsOn: names 'ghost'"),
    (
        "huge-fan-out",
        [{"name": "f", "type": "fan-out", "config": {"parallelism": 100000}}],
        "step 'f': config.parallelism: must be between 1 and 1000, got 100000",
    ),
    (
        "fan-out-zero",
        [{"name": "f", "type": "fan-out", "config": {"parallelism": 0}}],
        "step 'f': config.parallelism: must be between 1 and 1000, got 0",
    ),
    (
        "bad-quantity",
        [step("a", resources={"cpu": "abc"})],
        "step 'a': resources.requests.cpu: \"abc\" is not a Kubernetes quantity",
    ),
    (
        "transform-without-sql",
        [{"name": "t", "type": "transform", "config": {}}],
        "step 't': config.sql: is required for a transform step",
    ),
]
