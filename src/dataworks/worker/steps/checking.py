"""The quality-check step (edge layer): rules over an upstream table -> a JSON report.

    table: orders                   # which upstream table (default: the only one)
    rules:
      - not_null: [order_id, customer_id]
      - unique: order_id
      - accepted_values: {column: status, values: [new, paid, shipped]}
      - row_count: {min: 1, max: 1000000}
      - range: {column: total_amount, min: 0}
      - freshness: {column: created_at, max_age: 24h}
      - sql: SELECT * FROM orders WHERE shipped_at < created_at   # must return no rows
        name: shipped-after-created
        severity: warn              # error (default) fails the step; warn only reports

The report (every rule, its failing-row count and a few offending rows) is the
step's output, in its manifest, and the input tables pass through unchanged
(no copy), so a load can follow the check. The step's outputs in the pipeline's
status say `result: passed`, or `warned` when a `warn` rule failed, and the
count of such `warnings` (a later step's `when:` can read them).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from dataworks.core.pipelines import stepconfigs
from dataworks.worker.errors import StepFailed
from dataworks.worker.runtime import StepContext, literal, only_input, quote

SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Rule:
    kind: str
    name: str
    severity: str
    query: str  # returns the offending rows


def rule_query(rule: stepconfigs.QualityRule, table: str) -> str:
    """The SQL returning the rows of `table` that break a rule (parsed and checked in core)."""
    t = quote(table)
    cols = [quote(c) for c in rule.columns]
    if rule.kind == "not_null":
        return f"SELECT * FROM {t} WHERE " + " OR ".join(f"{c} IS NULL" for c in cols)
    if rule.kind == "unique":
        keys = ", ".join(cols)
        return f"SELECT {keys}, count(*) AS duplicates FROM {t} GROUP BY {keys} HAVING count(*) > 1"
    if rule.kind == "accepted_values":
        values = ", ".join(literal(v) for v in rule.values)
        c = cols[0]
        return f"SELECT * FROM {t} WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({values})"
    if rule.kind in {"row_count", "range"}:
        what = "count(*)" if rule.kind == "row_count" else cols[0]
        bounds = [(op, v) for op, v in (("<", rule.minimum), (">", rule.maximum)) if v is not None]
        cond = " OR ".join(f"{what} {op} {int(v) if rule.kind == 'row_count' else v}" for op, v in bounds)
        if rule.kind == "row_count":
            return f"SELECT count(*) AS row_count FROM {t} HAVING {cond}"
        return f"SELECT * FROM {t} WHERE {cond}"
    if rule.kind == "freshness":
        c = cols[0]
        return (
            f"SELECT max({c}) AS newest FROM {t} HAVING max({c}) IS NULL OR "
            f"CAST(max({c}) AS TIMESTAMP) < CAST(now() AS TIMESTAMP) - to_seconds({rule.max_age_seconds})"
        )
    return rule.sql


def evaluate(ctx: StepContext, rule: Rule) -> dict[str, Any]:
    con = ctx.duckdb
    try:
        count = con.execute(f"SELECT count(*) FROM ({rule.query})").fetchone()
        sample = con.execute(f"SELECT * FROM ({rule.query}) LIMIT {SAMPLE_ROWS}")
        names = [d[0] for d in sample.description or []]
        rows = [dict(zip(names, r, strict=True)) for r in sample.fetchall()]
    except duckdb.Error as e:
        raise StepFailed(f"step {ctx.name!r}: rule {rule.name}: SQL error: {e}") from e
    failing = int(count[0]) if count else 0
    return {
        "rule": rule.name,
        "kind": rule.kind,
        "severity": rule.severity,
        "passed": failing == 0,
        "failing_rows": failing,
        "sample": json.loads(json.dumps(rows, default=str)),
    }


def run(ctx: StepContext) -> None:
    inputs = ctx.register_inputs()
    table, checked = only_input(ctx, inputs, "table")
    parsed, problems = stepconfigs.quality_rules(ctx.config)
    if problems:  # the worker's entry point refused these already (exit 2); here for direct callers
        raise ctx.fail(*problems[0])
    rules = [Rule(r.kind, r.name, r.severity, rule_query(r, str(table))) for r in parsed]
    results = []
    for n, rule in enumerate(rules, 1):
        results.append(evaluate(ctx, rule))
        ctx.progress(n / len(rules))
    errors = [r for r in results if not r["passed"] and r["severity"] == "error"]
    report = {"table": table, "passed": not errors, "rules": results}
    for r in results:
        mark = "ok  " if r["passed"] else ("FAIL" if r["severity"] == "error" else "warn")
        ctx.log(f"{mark} {r['rule']}: {r['failing_rows']} failing rows")
    if errors:
        ctx.log(json.dumps(report, indent=1))
        detail = "; ".join(
            f"{r['rule']}: {r['failing_rows']} rows, e.g. {json.dumps(r['sample'][:2], default=str)}"
            for r in errors
        )
        raise StepFailed(f"step {ctx.name!r}: {len(errors)} quality rule(s) failed: {detail}")
    ctx.extra["report"] = report
    warned = [r for r in results if not r["passed"]]
    ctx.summary.values.update(result="warned" if warned else "passed", warnings=len(warned))
    ctx.passthrough[table] = checked
    ctx.summary.rows_out = checked.rows
