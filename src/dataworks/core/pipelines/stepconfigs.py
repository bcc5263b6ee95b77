"""The configuration rules of the built-in step types, in one place (pure layer).

`problems(type, config)` is every reason a built-in step's `config` is invalid.
core.validation calls it (through `core.steps.check_config`) before any Job
exists, and the worker calls the same function when it loads its step file
(exit code 2), so a configuration is refused by one rule in both places. The
worker's step modules read the parsed values from here (the quality rules, the
load target, the chunk strategy) instead of parsing the config a second time.

What depends on data or on the environment stays with the worker at run time:
a connection's scheme, an input's columns, a SQL file on disk, SQL syntax.
This module imports no pydantic and no I/O library: the worker starts fast.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from dataworks.core.kit import quantities

# (field under config, message); core.steps turns these into SpecErrors, the worker into exit 2.
Problem = tuple[str, str]

FETCH_FORMATS = ("csv", "json", "jsonl", "parquet")
TRANSFORM_ENGINES = ("duckdb", "postgres")
CHUNK_STRATEGIES = ("hash-based", "count-based", "size-based")
LOAD_DESTINATIONS = ("postgres", "file", "duckdb", "sqlite")
LOAD_URL_SCHEMES = ("postgresql", "file", "s3", "duckdb", "sqlite")
LOAD_MODES = ("append", "overwrite", "upsert")
LOAD_FORMATS = ("parquet", "csv", "jsonl")
QUALITY_RULES = ("not_null", "unique", "accepted_values", "row_count", "range", "freshness", "sql")
COLUMN_RULES = frozenset({"not_null", "unique", "accepted_values", "range", "freshness"})
SEVERITIES = ("error", "warn")


def _names(value: Any) -> list[str] | None:
    """A name or a list of names as a list; None when it is neither."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _text(config: dict[str, Any], key: str) -> str:
    value = config.get(key)
    return value.strip() if isinstance(value, str) else ""


def _names_or_list(config: dict[str, Any], key: str, out: list[Problem], what: str) -> None:
    if config.get(key) is not None and _names(config[key]) is None:
        out.append((key, f"must be {what} or a list of them, got {config[key]!r}"))


# -- fetch -------------------------------------------------------------------
def _fetch(config: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    if not config.get("source") and not (config.get("url") or config.get("path")):
        out.append(("source", "a fetch step needs a source connection, url or path"))
    fmt = config.get("format")
    if fmt and fmt not in FETCH_FORMATS:
        out.append(("format", f"{fmt!r} is not one of {', '.join(FETCH_FORMATS)}"))
    _names_or_list(config, "tables", out, "a table name")
    columns = config.get("columns")
    if columns is not None and (not isinstance(columns, list) or _names(columns) is None):
        out.append(("columns", f"must be a list of column names, got {columns!r}"))
    return out


# -- transform ---------------------------------------------------------------
def transform_engine(config: dict[str, Any]) -> str:
    return str(config.get("engine", "duckdb"))


def _transform(config: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    if not _text(config, "sql"):
        out.append(("sql", "is required for a transform step (DuckDB SQL, inline or a .sql file)"))
    engine = transform_engine(config)
    if engine not in TRANSFORM_ENGINES:
        out.append(("engine", f"{engine!r} is not one of {', '.join(TRANSFORM_ENGINES)}"))
    elif engine == "postgres" and not (config.get("connection") or config.get("source")):
        out.append(("connection", "engine: postgres needs a connection to a PostgreSQL database"))
    for key in ("output", "outputs"):
        _names_or_list(config, key, out, "a table name")
    return out


# -- fan-out -----------------------------------------------------------------
def chunk_strategy(config: dict[str, Any]) -> str:
    """The chunk strategy, default resolved: hash-based with a key, else count-based."""
    strategy = config.get("chunk_strategy", config.get("chunkStrategy"))
    return str(strategy or ("hash-based" if config.get("key") else "count-based"))


def _fan_out(config: dict[str, Any]) -> list[Problem]:
    out: list[Problem] = []
    strategy = config.get("chunk_strategy", config.get("chunkStrategy"))
    if strategy is not None and strategy not in CHUNK_STRATEGIES:
        out.append(("chunk_strategy", f"{strategy!r} is not one of {', '.join(CHUNK_STRATEGIES)}"))
    _names_or_list(config, "key", out, "a column name")
    if not (_text(config, "sql") or config.get("script") or config.get("command")):
        out.append(("sql", "a fan-out step needs `sql`, `script` or `command` for each worker to run"))
    for key in ("script", "command"):
        value = config.get(key)
        if value and not isinstance(value, str) and _names(value) is None:
            out.append((key, f"must be a command line or a list of arguments, got {value!r}"))
    return out


# -- load --------------------------------------------------------------------
@dataclass(frozen=True)
class LoadTarget:
    """Where a load writes: its kind (postgres, duckdb, sqlite or a file kind) and the
    location in the config (`rel`: url/path, or the destination URL itself)."""

    kind: str
    rel: str

    @property
    def is_file(self) -> bool:
        return self.kind not in {"postgres", "postgresql", "duckdb", "sqlite"}


def load_target(config: dict[str, Any]) -> LoadTarget:
    dest = str(config.get("destination", ""))
    kind = dest if dest in LOAD_DESTINATIONS else dest.split("://", 1)[0]
    if kind in {"duckdb", "sqlite"}:
        return LoadTarget(kind, str(config.get("path") or ""))
    rel = str(config.get("url") or config.get("path") or (dest if "://" in dest else ""))
    return LoadTarget(kind, rel)


def load_keys(config: dict[str, Any]) -> list[str]:
    return _names(config.get("key") or config.get("keys") or []) or []


def load_file_format(config: dict[str, Any], url: str) -> tuple[str | None, Problem | None]:
    """The format a file load writes to `url`: `format:`, else from the URL's ending."""
    fmt = config.get("format")
    if fmt:
        if fmt not in LOAD_FORMATS:
            return None, ("format", f"{fmt!r} is not one of {', '.join(LOAD_FORMATS)}")
        return str(fmt), None
    if url.endswith(("/", ".parquet")):
        return "parquet", None
    suffix = url.rsplit("/", 1)[-1].rsplit(".", 1)
    if len(suffix) == 2 and suffix[1] in LOAD_FORMATS:
        return suffix[1], None
    return None, (
        "format",
        f"cannot tell the format of {url}; set format: {', '.join(LOAD_FORMATS)} (or end a directory with /)",
    )


def _load(config: dict[str, Any]) -> list[Problem]:
    dest = config.get("destination")
    if not dest:
        return [("destination", f"is required for a load step (one of {', '.join(LOAD_DESTINATIONS)})")]
    if str(dest) not in LOAD_DESTINATIONS and str(dest).split("://")[0] not in LOAD_URL_SCHEMES:
        return [
            (
                "destination",
                f"{dest!r} is not supported; supported destinations: {', '.join(LOAD_DESTINATIONS)}, "
                f"or a URL with scheme {', '.join(LOAD_URL_SCHEMES)} (name a connection with `connection:`)",
            )
        ]
    out: list[Problem] = []
    mode = str(config.get("mode", "append"))
    if mode not in LOAD_MODES:
        out.append(("mode", f"{mode!r} is not one of {', '.join(LOAD_MODES)}"))
    raw_keys = config.get("key") or config.get("keys")
    if raw_keys and _names(raw_keys) is None:
        out.append(("key", f"must be a column name or a list of them, got {raw_keys!r}"))
    elif mode == "upsert" and not raw_keys:
        out.append(("key", "mode upsert needs the key columns, such as key: [order_id]"))
    target = load_target(config)
    connection = config.get("connection")
    if target.kind in {"postgres", "postgresql"} and not connection:
        out.append(("connection", "a postgres load names its connection, such as connection: warehouse_db"))
    elif target.kind in {"duckdb", "sqlite"} and not (target.rel or connection):
        out.append(("path", f"a {target.kind} load needs path: (the database file) or a connection"))
    elif target.is_file:
        if not (target.rel or connection):
            out.append(("url", "a file load needs url: or path: (add a trailing / for a directory)"))
        elif target.rel or config.get("format"):
            _, problem = load_file_format(config, target.rel)
            out += [problem] if problem else []
    return out


# -- quality-check -----------------------------------------------------------
@dataclass(frozen=True)
class QualityRule:
    """One quality rule, parsed: the worker turns it into SQL over the checked table."""

    kind: str
    name: str
    severity: str
    columns: tuple[str, ...] = ()
    values: tuple[str, ...] = ()  # accepted_values
    minimum: float | None = None  # row_count (whole numbers) and range
    maximum: float | None = None
    max_age_seconds: float = 0.0  # freshness
    sql: str = ""  # sql: a query that must return no rows


def _number(value: Any, whole: bool) -> float | None:
    """A number from YAML (or a numeric string); None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    if whole and not number.is_integer():
        return None
    return number


def _bounds(kind: str, spec: dict[str, Any], where: str, out: list[Problem]) -> tuple[float | None, ...]:
    found: list[float | None] = []
    for key in ("min", "max"):
        value = spec.get(key)
        number = None if value is None else _number(value, whole=kind == "row_count")
        if value is not None and number is None:
            what = "a whole number" if kind == "row_count" else "a number"
            out.append((f"{where}.{key}", f"must be {what}, got {value!r}"))
        found.append(number)
    if spec.get("min") is None and spec.get("max") is None:
        out.append((where, f"{kind} needs min:, max: or both"))
    return tuple(found)


def quality_rule(n: int, raw: Any) -> tuple[QualityRule | None, list[Problem]]:
    """Rule number n of a quality-check, parsed, or the problems that make it invalid."""
    where = f"rules[{n}]"
    if not isinstance(raw, dict):
        return None, [(where, f"must be an object such as {{not_null: column}}, got {raw!r}")]
    kinds = [k for k in QUALITY_RULES if k in raw] or (
        [raw["rule"]] if isinstance(raw.get("rule"), str) and raw["rule"] in QUALITY_RULES else []
    )
    if len(kinds) != 1:
        return None, [(where, f"must name exactly one rule of {', '.join(QUALITY_RULES)}")]
    kind = kinds[0]
    arg = raw.get(kind, raw)
    out: list[Problem] = []
    severity = str(raw.get("severity", "error"))
    if severity not in SEVERITIES:
        out.append((f"{where}.severity", f"{severity!r} is not one of {', '.join(SEVERITIES)}"))
    spec: dict[str, Any] = arg if isinstance(arg, dict) else {}
    column_arg = spec.get("columns", spec.get("column")) if isinstance(arg, dict) else arg
    columns = _names(column_arg) if column_arg is not None else []
    if kind in COLUMN_RULES and not columns:
        out.append((where, f"{kind} needs a column (a name, or a list of names)"))
    values: list[str] = []
    lo = hi = None
    age = 0.0
    sql = ""
    if kind == "accepted_values":
        raw_values = spec.get("values")
        if not isinstance(raw_values, list) or not raw_values:
            out.append((where, "accepted_values needs values: [...]"))
        else:
            values = [str(v) for v in raw_values]
    elif kind in {"row_count", "range"}:
        lo, hi = _bounds(kind, spec, where, out)
    elif kind == "freshness":
        try:
            age = quantities.parse_duration(str(spec.get("max_age", "24h")))
        except ValueError as e:
            out.append((f"{where}.max_age", str(e)))
    elif kind == "sql":
        sql = str(arg if isinstance(arg, str) else spec.get("sql", "")).strip().rstrip(";").strip()
        if not sql:
            out.append((where, "sql needs a query that returns the offending rows"))
    if out:
        return None, out
    cols = tuple(columns or ())
    label = str(raw.get("name") or (f"{kind}({', '.join(cols)})" if cols else kind))
    return QualityRule(kind, label, severity, cols, tuple(values), lo, hi, age, sql), []


def quality_rules(config: dict[str, Any]) -> tuple[list[QualityRule], list[Problem]]:
    raw_rules = config.get("rules") or []
    if not isinstance(raw_rules, list) or not raw_rules:
        return [], [("rules", "needs a list of rules, such as [{not_null: id}]")]
    rules: list[QualityRule] = []
    out: list[Problem] = []
    for n, raw in enumerate(raw_rules):
        rule, found = quality_rule(n, raw)
        out += found
        if rule is not None:
            rules.append(rule)
    return rules, out


def _quality_check(config: dict[str, Any]) -> list[Problem]:
    return quality_rules(config)[1]


CHECKS: dict[str, Callable[[dict[str, Any]], list[Problem]]] = {
    "fetch": _fetch,
    "transform": _transform,
    "fan-out": _fan_out,
    "load": _load,
    "quality-check": _quality_check,
}


def _declared_values(config: dict[str, Any]) -> list[Problem]:
    """`values: {name: SQL}`: outputs the step declares, each the first value of its query."""
    declared = config.get("values")
    if declared is None:
        return []
    if not isinstance(declared, dict) or not declared:
        return [("values", "must map output names to SQL queries, e.g. {late: SELECT count(*) FROM t}")]
    out: list[Problem] = []
    for name, sql in declared.items():
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", str(name)):
            out.append((f"values.{name}", "an output name is a letter or _, then letters, digits or _"))
        elif name in RESERVED_OUTPUTS:
            out.append((f"values.{name}", f"is reported by every step; choose another name than {name}"))
        elif not isinstance(sql, str) or not sql.strip():
            out.append((f"values.{name}", "must be a SQL query whose first value is the output"))
    return out


# What every built-in step reports (worker.runtime.Summary): a declared output may not hide one.
RESERVED_OUTPUTS = frozenset({"rows", "rowsIn", "bytes", "files", "durationSeconds", "result", "warnings"})


def problems(type_: str, config: dict[str, Any]) -> list[Problem]:
    """Every reason this built-in step's config is invalid; [] for other types."""
    check = CHECKS.get(type_)
    return [*check(config), *_declared_values(config)] if check else []
