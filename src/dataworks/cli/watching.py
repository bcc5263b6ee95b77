"""`pipeline-ctl status --watch` and `logs` on a cluster (edge layer).

`--watch` follows a Pipeline with the watch API (reconnecting when the server
ends the watch or the connection drops) and redraws a Rich Live view: the step
list, and for each running fan-out one row per worker with its node, attempts,
the last `PROGRESS:` line its pod printed, and an ETA. `logs` prints the logs of
a pipeline's pods, prefixed by step and worker, optionally following them all.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.text import Text

from dataworks.api import pipeline as api
from dataworks.cli import context, formatting
from dataworks.cli.context import EXIT_FAILED, EXIT_OK, Cluster, fail
from dataworks.core.kit.jobs import last_progress
from dataworks.core.kit.labels import LABEL_ATTEMPT, LABEL_STEP

TERMINAL = api.TERMINAL_PHASES
LABEL_PIPELINE = api.INFO.owner_label
COLOURS = ["cyan", "magenta", "green", "yellow", "blue", "red"]


def pods(
    cluster: Cluster, pipeline: str, step: str | None = None, attempt: int | None = None
) -> list[dict[str, Any]]:
    from lightkube.resources.core_v1 import Pod

    labels: dict[str, Any] = {LABEL_PIPELINE: pipeline}
    if step:
        labels[LABEL_STEP] = step
    if attempt:
        labels[LABEL_ATTEMPT] = str(attempt)
    found = cluster.call(
        "list pods", lambda: list(cluster.client.list(Pod, namespace=cluster.namespace, labels=labels))
    )
    return [dict(p.to_dict()) for p in found]


TAIL_INTERVAL = 2.0  # seconds: a pod's log tail is read at most this often (the watch redraws faster)
_tails: dict[str, tuple[float, str]] = {}


def tail(cluster: Cluster, pod: str, lines: int = 20) -> str:
    cached = _tails.get(pod)
    if cached and time.monotonic() - cached[0] < TAIL_INTERVAL:
        return cached[1]
    try:
        text = "\n".join(cluster.client.log(pod, namespace=cluster.namespace, tail_lines=lines))
    except Exception:  # a pod without logs yet (pending) has no tail; the view shows "-"
        text = ""
    _tails[pod] = (time.monotonic(), text)
    return text


def step_progress(
    cluster: Cluster, p: dict[str, Any], *, all_fan_outs: bool = False
) -> tuple[dict[str, float], list[Any]]:
    """Each running step's progress (its workers' mean PROGRESS), and the fan-outs' worker tables."""
    now = datetime.now(UTC)
    st = p.get("status") or {}
    types = {s["name"]: s.get("type") for s in (p.get("spec") or {}).get("steps") or []}
    fractions: dict[str, float] = {}
    tables: list[Any] = []
    for s in st.get("stepStatuses") or []:
        fan_out = types.get(s["name"]) == "fan-out"
        if s.get("phase") != "Running" and not (fan_out and all_fan_outs):
            continue
        found = pods(cluster, p["metadata"]["name"], s["name"], s.get("attempt", 1))
        progress = {
            pod["metadata"]["name"]: last_progress(tail(cluster, pod["metadata"]["name"]))
            for pod in found
            if (pod.get("status") or {}).get("phase") == "Running"
        }
        rows = formatting.worker_rows(found, progress, now)
        if s.get("phase") == "Running" and rows:
            fractions[s["name"]] = sum(r["progress"] or 0.0 for r in rows) / len(rows)
        if fan_out:
            tables += [Text(""), formatting.workers_table(s["name"], rows)]
    return fractions, tables


def worker_tables(cluster: Cluster, p: dict[str, Any], *, all_fan_outs: bool = False) -> list[Any]:
    return step_progress(cluster, p, all_fan_outs=all_fan_outs)[1]


def overall(p: dict[str, Any], running: dict[str, float]) -> Text | None:
    """Overall progress (completed steps plus running steps' fractions) and an ETA at the rate so far."""
    st = p.get("status") or {}
    total = st.get("totalSteps") or len((p.get("spec") or {}).get("steps") or [])
    if not total or st.get("phase") != "Running":
        return None
    fraction = min(1.0, ((st.get("completedSteps") or 0) + sum(running.values())) / total)
    eta = formatting.eta(st.get("startTime"), fraction, datetime.now(UTC))
    return Text(f"Progress: {formatting.progress_bar(fraction)}  ETA {eta}")


def describe_data(cluster: Cluster, name: str) -> dict[str, Any]:
    """`describe -o json|yaml`: the status summary, each step's Job, and the Events."""
    p = cluster.get(name)
    status = p.get("status") or {}
    events = sorted(context.events_of(cluster, name), key=lambda e: str(e.get("lastTimestamp") or ""))
    return {
        **formatting.summary(p),
        "jobs": {
            s["name"]: s["jobName"]
            for s in (p.get("status") or {}).get("stepStatuses") or []
            if s.get("jobName")
        },
        "template": {k: v for k, v in (status.get("template") or {}).items() if k != "steps"},
        "conditions": status.get("conditions") or [],
        "waiting": [{"step": st, "pod": pod, "why": why} for st, pod, why in waiting_pods(cluster, p)],
        "events": [{k: e.get(k) for k in ("type", "reason", "message", "lastTimestamp")} for e in events],
    }


def waiting_pods(cluster: Cluster, p: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(step, pod, why) for each pod of a running step that does not run yet."""
    name = p["metadata"]["name"]
    out = []
    for st in (p.get("status") or {}).get("stepStatuses") or []:
        if st.get("phase") != "Running":
            continue
        for pod in pods(cluster, name, st["name"], st.get("attempt", 1)):
            why = formatting.pod_waiting(pod)
            if why is not None:
                out.append((st["name"], pod["metadata"]["name"], why))
    return out


def describe(cluster: Cluster, name: str, console: Console) -> int:
    """Everything about one pipeline: its steps, each step's Job, fan-out workers, and its Events."""
    p = cluster.get(name)
    now = datetime.now(UTC)
    for line in formatting.pipeline_detail(p, now):
        console.print(line)
    conditions = (p.get("status") or {}).get("conditions") or []
    if conditions:
        console.print(Text(""))
        console.print(formatting.conditions_table(conditions))
    jobs = [s for s in (p.get("status") or {}).get("stepStatuses") or [] if s.get("jobName")]
    if jobs:
        console.print(Text(""))
        console.print(Text("Jobs:"))
        for s in jobs:
            console.print(Text(f"  {s['name']}: job/{s['jobName']} (attempt {s.get('attempt', 1)})"))
    for table in worker_tables(cluster, p, all_fan_outs=True):
        console.print(table)
    for step, pod, why in waiting_pods(cluster, p):
        console.print(Text(f"Step {step} is waiting: pod {pod}: {why}", style="yellow"))
    for st in (p.get("status") or {}).get("stepStatuses") or []:
        if st.get("phase") != "Failed":
            continue
        failed = [
            x
            for x in pods(cluster, name, st["name"], st.get("attempt", 1))
            if (x.get("status") or {}).get("phase") == "Failed"
        ]
        console.print(Text(""))
        console.print(
            Text(f"Step {st['name']} failed: {st.get('reason')}: {st.get('message') or ''}", style="red")
        )
        for x in failed[-2:]:  # the last lines the failed pods printed: the seed's failure diagnosis
            console.print(Text(f"  last lines of pod {x['metadata']['name']}:"))
            for printed in tail(cluster, x["metadata"]["name"], 10).splitlines():
                if printed.strip():
                    console.print(Text(f"    {printed}"))
    console.print(Text(""))
    console.print(formatting.events_table(context.events_of(cluster, name), now))
    return EXIT_OK


def render(cluster: Cluster, p: dict[str, Any], *, all_fan_outs: bool = False) -> Group:
    lines: list[Any] = list(formatting.pipeline_detail(p, datetime.now(UTC)))
    fractions, tables = step_progress(cluster, p, all_fan_outs=all_fan_outs)
    progress = overall(p, fractions)
    if progress is not None:
        lines.insert(3, progress)
    return Group(*lines, *tables)


def _follow(
    cluster: Cluster, name: str, latest: dict[str, Any], changed: threading.Event, stop: threading.Event
) -> None:
    """Keep the newest Pipeline in `latest`, re-opening the watch whenever it ends."""
    from dataworks.kube.resources import Pipeline

    while not stop.is_set():
        try:
            events: Any = cluster.client.watch(
                Pipeline, namespace=cluster.namespace, fields={"metadata.name": name}, server_timeout=60
            )
            for _, obj in events:
                latest["p"] = dict(obj.to_dict())
                changed.set()
                if stop.is_set():
                    return
        except Exception:  # the server closed the watch or the network blinked: watch again
            time.sleep(1)


def watch_status(cluster: Cluster, name: str, console: Console) -> int:
    latest = {"p": cluster.get(name)}
    changed, stop = threading.Event(), threading.Event()
    threading.Thread(target=_follow, args=(cluster, name, latest, changed, stop), daemon=True).start()
    try:
        with Live(render(cluster, latest["p"]), console=console, refresh_per_second=4) as live:
            while True:
                changed.wait(2.0)  # redraw on every change, and every 2 s for durations and progress
                changed.clear()
                live.update(render(cluster, latest["p"]))
                if ((latest["p"].get("status") or {}).get("phase")) in TERMINAL:
                    break
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        stop.set()
    phase = (latest["p"].get("status") or {}).get("phase")
    return EXIT_OK if phase == "Completed" else EXIT_FAILED


def _prefix(pod: dict[str, Any]) -> str:
    meta = pod.get("metadata") or {}
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    index = annotations.get(formatting.INDEX_ANNOTATION)
    who = f"{labels.get(LABEL_STEP, '?')}" + (f"/worker-{index}" if index is not None else "")
    return f"[{who} attempt {labels.get(LABEL_ATTEMPT, '1')}]"


@dataclass(frozen=True)
class LogOptions:
    step: str | None = None
    worker: int | None = None
    follow: bool = False
    tail: int | None = None
    since: int | None = None  # seconds
    previous: bool = False  # only the pods of earlier attempts (a retried step's failed runs)
    as_json: bool = False  # one JSON object per line: pod, step, worker, attempt, line


def _json_line(pod: dict[str, Any], line: str) -> str:
    meta = pod["metadata"]
    labels, annotations = meta.get("labels") or {}, meta.get("annotations") or {}
    index = annotations.get(formatting.INDEX_ANNOTATION)
    return json.dumps(
        {
            "pod": meta["name"],
            "step": labels.get(LABEL_STEP),
            "worker": int(index) if index is not None and index.isdigit() else None,
            "attempt": int(labels.get(LABEL_ATTEMPT, "1")),
            "line": line,
        }
    )


def logs(cluster: Cluster, name: str, opts: LogOptions) -> int:
    p = cluster.get(name)  # a clear "not found" with suggestions
    steps = [s["name"] for s in (p.get("spec") or {}).get("steps") or []]
    step, worker, follow = opts.step, opts.worker, opts.follow
    if step and step not in steps:
        fail(f"pipeline {name} has no step {step} (steps: {', '.join(steps)})")
    found = pods(cluster, name, step)
    if opts.previous:
        current = {s["name"]: s.get("attempt", 1) for s in (p.get("status") or {}).get("stepStatuses") or []}
        found = [
            x
            for x in found
            if int(x["metadata"]["labels"].get(LABEL_ATTEMPT, "1"))
            < current.get(x["metadata"]["labels"].get(LABEL_STEP, ""), 1)
        ]
    if worker is not None:
        found = [
            x
            for x in found
            if (x["metadata"].get("annotations") or {}).get(formatting.INDEX_ANNOTATION) == str(worker)
        ]
    if not found:
        fail(f"no pods for pipeline {name}" + (f" step {step}" if step else "") + " (yet)")
    order = {s: i for i, s in enumerate(steps)}
    found.sort(key=lambda x: (order.get(x["metadata"]["labels"].get(LABEL_STEP), 0), x["metadata"]["name"]))
    console = Console(highlight=False, soft_wrap=True)
    colour = {x["metadata"]["name"]: COLOURS[i % len(COLOURS)] for i, x in enumerate(found)}
    if not follow:
        for x in found:
            prefix = Text(_prefix(x) + " ", style=colour[x["metadata"]["name"]])
            for line in cluster.client.log(
                x["metadata"]["name"], namespace=cluster.namespace, tail_lines=opts.tail, since=opts.since
            ):
                if opts.as_json:
                    print(_json_line(x, line.rstrip("\n")), flush=True)
                else:
                    console.print(prefix + Text(line.rstrip("\n")))
        return EXIT_OK
    lines: queue.Queue[tuple[str, str] | None] = queue.Queue()

    def stream(pod: dict[str, Any]) -> None:
        ended = (pod.get("status") or {}).get("phase") in {"Succeeded", "Failed"}
        try:
            for line in cluster.client.log(
                pod["metadata"]["name"],
                namespace=cluster.namespace,
                follow=not ended,  # an ended pod's log is complete: read it and stop
                tail_lines=opts.tail,
                since=opts.since,
            ):
                lines.put((pod["metadata"]["name"], line.rstrip("\n")))
        except Exception as e:
            lines.put((pod["metadata"]["name"], f"(log stream ended: {e})"))
        finally:
            lines.put(None)

    by_name = {x["metadata"]["name"]: x for x in found}
    for x in found:
        threading.Thread(target=stream, args=(x,), daemon=True).start()
    open_streams = len(found)
    try:
        while open_streams:
            item = lines.get()
            if item is None:
                open_streams -= 1
                continue
            pod_name, line = item
            if opts.as_json:
                print(_json_line(by_name[pod_name], line), flush=True)
            else:
                console.print(Text(_prefix(by_name[pod_name]) + " ", style=colour[pod_name]) + Text(line))
    except KeyboardInterrupt:
        pass
    return EXIT_OK
