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
(no copy), so a load can follow the check.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import duckdb

from dataworks.core.kit import quantities
from dataworks.worker.errors import StepFailed
from dataworks.worker.runtime import StepContext, literal, only_input, quote

RULES = ("not_null", "unique", "accepted_values", "row_count", "range", "freshness", "sql")
SAMPLE_ROWS = 5


@dataclass(frozen=True)
class Rule:
    kind: str
    name: str
    severity: str
    query: str  # returns the offending rows


def _columns(value: Any) -> list[str]:
    if isinstance(value, dict):
        value = value.get("columns", value.get("column"))
    return [value] if isinstance(value, str) else [str(c) for c in value or []]


def parse_rule(ctx: StepContext, n: int, raw: Any, table: str) -> Rule:
    where = f"rules[{n}]"
    if not isinstance(raw, dict):
        raise ctx.fail(where, f"must be an object such as {{not_null: column}}, got {raw!r}")
    kinds = [k for k in RULES if k in raw] or ([raw["rule"]] if raw.get("rule") in RULES else [])
    if len(kinds) != 1:
        raise ctx.fail(where, f"must name exactly one rule of {', '.join(RULES)}")
    kind = kinds[0]
    arg = raw.get(kind, raw)
    severity = str(raw.get("severity", "error"))
    if severity not in {"error", "warn"}:
        raise ctx.fail(f"{where}.severity", f"{severity!r} is not one of error, warn")
    t = quote(table)
    cols = _columns(arg)
    spec = arg if isinstance(arg, dict) else {}
    if kind in {"not_null", "unique", "accepted_values", "range", "freshness"} and not cols:
        raise ctx.fail(where, f"{kind} needs a column")
    if kind == "not_null":
        query = f"SELECT * FROM {t} WHERE " + " OR ".join(f"{quote(c)} IS NULL" for c in cols)
    elif kind == "unique":
        keys = ", ".join(quote(c) for c in cols)
        query = f"SELECT {keys}, count(*) AS duplicates FROM {t} GROUP BY {keys} HAVING count(*) > 1"
    elif kind == "accepted_values":
        values = ", ".join(literal(str(v)) for v in spec.get("values") or [])
        if not values:
            raise ctx.fail(where, "accepted_values needs values: [...]")
        c = quote(cols[0])
        query = f"SELECT * FROM {t} WHERE {c} IS NOT NULL AND CAST({c} AS VARCHAR) NOT IN ({values})"
    elif kind == "row_count":
        lo, hi = spec.get("min"), spec.get("max")
        cond = " OR ".join(x for x in (f"count(*) < {int(lo)}" if lo is not None else "",
                                       f"count(*) > {int(hi)}" if hi is not None else "") if x)  # fmt: skip
        query = f"SELECT count(*) AS row_count FROM {t} HAVING {cond or 'false'}"
    elif kind == "range":
        c, lo, hi = quote(cols[0]), spec.get("min"), spec.get("max")
        conds = [
            f"{c} < {float(lo)}" if lo is not None else "",
            f"{c} > {float(hi)}" if hi is not None else "",
        ]
        query = f"SELECT * FROM {t} WHERE " + (" OR ".join(x for x in conds if x) or "false")
    elif kind == "freshness":
        age = quantities.parse_duration(str(spec.get("max_age", "24h")))
        c = quote(cols[0])
        query = (
            f"SELECT max({c}) AS newest FROM {t} HAVING max({c}) IS NULL OR "
            f"CAST(max({c}) AS TIMESTAMP) < CAST(now() AS TIMESTAMP) - to_seconds({age})"
        )
    else:
        query = str(arg if isinstance(arg, str) else spec.get("sql", "")).strip().rstrip(";")
    label = str(raw.get("name") or (f"{kind}({', '.join(cols)})" if cols else kind))
    return Rule(kind, label, severity, query)


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
    raw_rules = ctx.config.get("rules") or []
    if not isinstance(raw_rules, list) or not raw_rules:
        raise ctx.fail("rules", "needs a list of rules, such as [{not_null: id}]")
    rules = [parse_rule(ctx, n, r, str(table)) for n, r in enumerate(raw_rules)]
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
    ctx.passthrough[table] = checked
    ctx.summary.rows_out = checked.rows
