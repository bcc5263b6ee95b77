"""Pure rendering for pipeline-ctl: plain data in, Rich renderables or text out.

Nothing here talks to a cluster, so every view is unit-tested with plain dicts.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from dataworks.core.kit import clock, quantities

PHASE_STYLES = {
    "Completed": "green",
    "Running": "cyan",
    "Pending": "yellow",
    "Waiting": "dim",
    "Suspended": "yellow",
    "Failed": "red",
    "Cancelled": "magenta",
    "Skipped": "dim",
}
STEP_ICONS = {
    "Completed": "✅",
    "Running": "🔄",
    "Waiting": "⏳",
    "Failed": "❌",
    "Skipped": "⏭",
    "Cancelled": "🚫",
}


def parse_time(value: str | None) -> datetime | None:
    if not value:
        return None
    return clock.parse_ts(value)


def elapsed(start: str | None, end: str | None, now: datetime) -> str:
    begin = parse_time(start)
    if begin is None:
        return "-"
    finish = parse_time(end) or now
    return quantities.format_duration((finish - begin).total_seconds())


def phase_text(phase: str) -> Text:
    return Text(phase, style=PHASE_STYLES.get(phase, ""))


def pipelines_table(items: list[dict[str, Any]], now: datetime, *, all_namespaces: bool = False) -> Table:
    """The overnight overview: one row per pipeline."""
    table = Table(box=None, pad_edge=False)
    if all_namespaces:
        table.add_column("Namespace")
    for col in ("Pipeline", "Phase", "Steps", "Duration", "Started"):
        table.add_column(col)
    for p in items:
        meta, st = p.get("metadata") or {}, p.get("status") or {}
        row: list[Any] = [meta.get("name", "")]
        if all_namespaces:
            row.insert(0, meta.get("namespace", ""))
        started = parse_time(st.get("startTime"))
        row += [
            phase_text(st.get("phase") or "Pending"),
            st.get("progress") or f"0/{len((p.get('spec') or {}).get('steps') or [])}",
            elapsed(st.get("startTime"), st.get("completionTime"), now),
            started.strftime("%Y-%m-%d %H:%M:%S") if started else "-",
        ]
        table.add_row(*row)
    return table


def waiting_for(step: dict[str, Any], spec_steps: dict[str, dict[str, Any]], phases: dict[str, str]) -> str:
    deps = (spec_steps.get(step["name"]) or {}).get("dependsOn") or []
    pending = [d for d in deps if phases.get(d) != "Completed"]
    return f"waiting for {', '.join(pending)}" if pending else "waiting to be scheduled"


def pipeline_detail(p: dict[str, Any], now: datetime) -> list[Text]:
    """The step list of one pipeline, with icons, durations and what waiting steps wait for."""
    meta, st = p.get("metadata") or {}, p.get("status") or {}
    spec_steps = {s["name"]: s for s in (p.get("spec") or {}).get("steps") or []}
    statuses = st.get("stepStatuses") or [{"name": n, "phase": "Waiting"} for n in spec_steps]
    phases = {s["name"]: s.get("phase", "Waiting") for s in statuses}
    lines = [
        Text(f"Pipeline: {meta.get('name', '')}"),
        Text("Phase: ").append(phase_text(st.get("phase") or "Pending")),
        Text(f"Steps: {st.get('completedSteps', 0)}/{st.get('totalSteps', len(spec_steps))} completed"),
    ]
    if st.get("message"):
        lines.append(Text(f"Message: {st['message']}"))
    template = st.get("template") or {}
    if template:
        values = ", ".join(f"{k}={json.dumps(v)}" for k, v in (template.get("parameters") or {}).items())
        lines.append(Text(f"Template: {template.get('name')} ({values})"))
    lines.append(Text(""))
    for s in statuses:
        phase = s.get("phase", "Waiting")
        icon = STEP_ICONS.get(phase, "•")
        took = elapsed(s.get("startTime"), s.get("completionTime"), now)
        if phase == "Completed":
            detail = f"completed in {took}"
            if s.get("outputs"):
                shown = ", ".join(f"{k}={json.dumps(v)}" for k, v in s["outputs"].items())
                detail += f"; outputs {shown if len(shown) <= 120 else shown[:117] + '...'}"
        elif phase == "Running":
            detail = f"running for {took}"
            workers = s.get("workers")
            if workers:
                detail += f", workers {workers.get('succeeded', 0)} done / {workers.get('active', 0)} active"
        elif phase == "Waiting":
            detail = waiting_for(s, spec_steps, phases)
        else:
            detail = s.get("message") or phase.lower()
        attempt = f" (attempt {s['attempt']})" if s.get("attempt", 1) > 1 else ""
        lines.append(Text(f"{icon} {s['name']}{attempt} ({detail})"))
    return lines


STEP_SUMMARY_FIELDS = ("name", "type", "phase", "attempt", "jobName", "reason", "message", "outputs")


def summary(p: dict[str, Any]) -> dict[str, Any]:
    """The stable JSON shape of one pipeline for scripts."""
    meta, st = p.get("metadata") or {}, p.get("status") or {}
    return {
        "name": meta.get("name"),
        "namespace": meta.get("namespace"),
        "phase": st.get("phase") or "Pending",
        "progress": st.get("progress"),
        "startTime": st.get("startTime"),
        "completionTime": st.get("completionTime"),
        "message": st.get("message"),
        "steps": [{k: s.get(k) for k in STEP_SUMMARY_FIELDS} for s in st.get("stepStatuses") or []],
    }


def progress_bar(fraction: float | None, width: int = 12) -> str:
    if fraction is None:
        return ""
    filled = round(fraction * width)
    return "█" * filled + "░" * (width - filled) + f" {fraction * 100:5.1f}%"


def local_steps_table(
    status: dict[str, Any], progress: dict[str, tuple[float | None, str]], now: datetime
) -> Table:
    """The live table of a local run: step, status, attempt, duration, progress."""
    table = Table(box=None, header_style="bold")
    for col in ("STEP", "TYPE", "STATUS", "ATTEMPT", "DURATION", "PROGRESS"):
        table.add_column(col)
    for s in status.get("stepStatuses") or []:
        phase = s.get("phase", "Waiting")
        fraction, workers = progress.get(s["name"], (None, ""))
        if phase == "Completed":
            fraction = 1.0
        bar = progress_bar(fraction) if phase in {"Running", "Completed"} else (s.get("message") or "")
        table.add_row(
            s["name"],
            s.get("type", ""),
            phase_text(phase),
            str(s.get("attempt", 1)),
            elapsed(s.get("startTime"), s.get("completionTime"), now) if s.get("startTime") else "",
            f"{bar} {workers}".strip(),
        )
    return table


INDEX_ANNOTATION = "batch.kubernetes.io/job-completion-index"


def eta(start: str | None, fraction: float | None, now: datetime) -> str:
    """Time left at the rate so far: elapsed * (1 - p) / p."""
    begin = parse_time(start)
    if begin is None or not fraction or fraction >= 1:
        return "-"
    spent = (now - begin).total_seconds()
    return quantities.format_duration(spent * (1 - fraction) / fraction)


def worker_rows(
    pods: list[dict[str, Any]], progress: dict[str, float | None], now: datetime
) -> list[dict[str, Any]]:
    """One row per fan-out worker index: its newest pod, how many pods it took, its progress and ETA."""
    by_index: dict[int, list[dict[str, Any]]] = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        raw = (meta.get("annotations") or {}).get(INDEX_ANNOTATION, "0")
        by_index.setdefault(int(raw) if str(raw).isdigit() else 0, []).append(pod)
    rows = []
    for index in sorted(by_index):
        tries = sorted(
            by_index[index], key=lambda p: (p.get("metadata") or {}).get("creationTimestamp") or ""
        )
        pod = tries[-1]
        meta, st = pod.get("metadata") or {}, pod.get("status") or {}
        phase = st.get("phase") or "Pending"
        fraction = 1.0 if phase == "Succeeded" else progress.get(meta.get("name", ""))
        rows.append(
            {
                "worker": index,
                "pod": meta.get("name", ""),
                "node": (pod.get("spec") or {}).get("nodeName") or "-",
                "phase": phase,
                "attempts": len(tries),
                "progress": fraction,
                "eta": eta(st.get("startTime"), fraction, now) if phase == "Running" else "-",
            }
        )
    return rows


def workers_table(step: str, rows: list[dict[str, Any]]) -> Table:
    """The seed's per-worker view of a fan-out: worker, node, phase, attempts, progress, ETA."""
    table = Table(
        title=f"{step}: {sum(1 for r in rows if r['phase'] == 'Succeeded')}/{len(rows)} workers done",
        box=None,
        header_style="bold",
        title_justify="left",
    )
    for col in ("WORKER", "POD", "NODE", "PHASE", "ATTEMPTS", "PROGRESS", "ETA"):
        table.add_column(col)
    pod_phase = {"Succeeded": "Completed", "Pending": "Waiting"}
    for r in rows:
        table.add_row(
            str(r["worker"]),
            r["pod"],
            r["node"],
            phase_text(pod_phase.get(r["phase"], r["phase"])),
            str(r["attempts"]),
            progress_bar(r["progress"]) or "-",
            r["eta"],
        )
    return table


def events_table(events: list[dict[str, Any]], now: datetime) -> Table:
    """An object's Events, oldest first, as `kubectl describe` lists them (in the order they were
    sent: by eventTime, to the microsecond, where the Event has one)."""
    table = Table(box=None, header_style="bold", title="Events", title_justify="left")
    for col in ("AGE", "TYPE", "REASON", "MESSAGE"):
        table.add_column(col)

    def when(e: dict[str, Any]) -> str:
        return str(
            e.get("lastTimestamp")
            or e.get("eventTime")
            or (e.get("metadata") or {}).get("creationTimestamp")
            or ""
        )

    def order(e: dict[str, Any]) -> str:
        return str(e.get("eventTime") or when(e))

    for e in sorted(events, key=order):
        stamp = when(e)[:19] + "Z" if when(e) else None
        age = elapsed(stamp, None, now) if stamp else "-"
        style = "red" if e.get("type") == "Warning" else ""
        table.add_row(
            age, Text(e.get("type") or "", style=style), e.get("reason") or "", e.get("message") or ""
        )
    return table


def conditions_table(conditions: list[dict[str, Any]]) -> Table:
    """A pipeline's conditions (Valid, Complete, Failed, Suspended) as `kubectl describe` shows them."""
    table = Table(box=None, header_style="bold", title="Conditions", title_justify="left")
    for col in ("TYPE", "STATUS", "REASON", "MESSAGE"):
        table.add_column(col)
    for c in conditions:
        table.add_row(c.get("type", ""), c.get("status", ""), c.get("reason", ""), c.get("message", ""))
    return table


STARTING = {"ContainerCreating", "PodInitializing"}


def pod_waiting(pod: dict[str, Any]) -> str | None:
    """Why a pod of a running step does not run yet, from its status alone, or None if it runs.

    The scheduler's message when it cannot place the pod; a container's waiting reason and
    message (ImagePullBackOff, CreateContainerConfigError: a missing Secret key, ...). A volume
    that cannot be mounted shows only as ContainerCreating here (its reason is an Event)."""
    status = pod.get("status") or {}
    if status.get("phase") != "Pending":
        return None
    for c in status.get("conditions") or []:
        if c.get("type") == "PodScheduled" and c.get("status") == "False":
            return f"not scheduled: {c.get('message') or c.get('reason') or 'no node fits'}"
    for cs in (status.get("initContainerStatuses") or []) + (status.get("containerStatuses") or []):
        waiting = (cs.get("state") or {}).get("waiting") or {}
        reason = waiting.get("reason")
        if reason and reason not in STARTING:
            return f"{reason}: {waiting.get('message') or ''}".rstrip(": ")
        if reason:
            return f"{reason} (if it lasts: a Secret or volume it mounts may be missing; see its Events)"
    return "pending"


def json_path(obj: dict[str, Any], path: str) -> Any:
    """The value at a printer column's simple JSONPath (.status.phase), or None."""
    value: Any = obj
    for part in path.strip(".").split("."):
        if not isinstance(value, dict):
            return None
        value = value.get(part)
    return value


def resources_table(
    rows: list[tuple[Any, dict[str, Any]]],
    now: datetime,
    *,
    all_namespaces: bool = False,
    with_kind: bool = False,
) -> Table:
    """kubectl get's table for dataworks objects: NAME and each kind's printer columns.

    With several kinds, names are spelled KIND/NAME and the columns are the
    first kind's (a kind without one of them leaves it empty); AGE is always last."""
    first = rows[0][0]
    table = Table(box=None, show_edge=False, pad_edge=False, header_style="bold")
    if all_namespaces:
        table.add_column("NAMESPACE")
    table.add_column("NAME")
    columns = [c for c in first.printer_columns if c["type"] != "date"]
    for c in columns:
        table.add_column(c["name"].upper())
    table.add_column("AGE")  # as kubectl: from creationTimestamp, for every kind
    for info, obj in rows:
        meta = obj.get("metadata") or {}
        name = f"{info.singular}.{info.group}/{meta.get('name', '')}" if with_kind else meta.get("name", "")
        cells = [meta.get("namespace", "")] if all_namespaces else []
        cells.append(name)
        paths = {x["name"]: x["jsonPath"] for x in info.printer_columns}
        for c in columns:
            value = json_path(obj, paths[c["name"]]) if c["name"] in paths else None
            cells.append("" if value is None else str(value))
        cells.append(elapsed(meta.get("creationTimestamp"), None, now))
        table.add_row(*cells)
    return table


def sequence_detail(obj: dict[str, Any], now: datetime) -> list[Text]:
    """The steps of one SequentialJob, in order, with icons, runs, durations and outputs."""
    meta, st = obj.get("metadata") or {}, obj.get("status") or {}
    containers = [c["name"] for c in (obj.get("spec") or {}).get("containers") or []]
    steps = st.get("steps") or [{"name": n, "phase": "Waiting"} for n in containers]
    progress = st.get("progress") or {}
    lines = [
        Text(f"SequentialJob: {meta.get('name', '')}"),
        Text("Phase: ").append(phase_text(st.get("phase") or "Pending")),
        Text(f"Step: {progress.get('step') or f'0/{len(steps)}'}"),
    ]
    if st.get("message"):
        lines.append(Text(f"Message: {st['message']}"))
    lines.append(Text(""))
    for s in steps:
        phase = s.get("phase", "Waiting")
        took = elapsed(s.get("startTime"), s.get("completionTime"), now)
        detail = {
            "Completed": f"completed in {took}",
            "Running": f"running for {took}",
            "Waiting": "waiting",
        }.get(phase, s.get("message") or phase.lower())
        attempt = f" (run {s['attempt']})" if s.get("attempt", 1) > 1 else ""
        lines.append(Text(f"{STEP_ICONS.get(phase, '•')} {s['name']}{attempt} ({detail})"))
        if s.get("output"):
            lines.append(Text(f"    output: {s['output'].splitlines()[0] if s['output'].strip() else ''}"))
    return lines


def status_and_events(name: str, obj: dict[str, Any], events: list[dict[str, Any]]) -> dict[str, Any]:
    """`describe -o json|yaml` of a kind without a summary of its own: its status and its Events."""
    keys = ("type", "reason", "message", "eventTime")
    ordered = sorted(events, key=lambda e: str(e.get("eventTime") or e.get("lastTimestamp") or ""))
    return {
        "name": name,
        "status": obj.get("status") or {},
        "events": [{k: e.get(k) for k in keys} for e in ordered],
    }
