"""The stream benchmark's report (edge layer): a self-contained HTML page, and its terminal rows.

Four plots drawn with matplotlib and embedded as PNG data, so the page needs no server and no
network: the rate produced and processed against the schedule's, lag and consumers, the
end-to-end latency percentiles (log scale), and CPU per role; every fault is a vertical line
on each of them. A summary table with the correctness check heads the page. Each plot image
marks itself loaded (`data-loaded`), which the test reads back from headless Chromium.
"""

from __future__ import annotations

import base64
import html
import io
from typing import Any

from dataworks.api.benchscenario import Scenario
from dataworks.core.streams.rates import Schedule

SUMMARY_ROWS = (
    ("producedMessages", "messages produced", "{:,}"),
    ("processed", "processed (distinct)", "{:,}"),
    ("lost", "lost", "{:,}"),
    ("duplicated", "duplicates (dropped or processed twice)", "{:,}"),
    ("outOfOrder", "out of order per symbol", "{:,}"),
    ("errors", "malformed messages", "{:,}"),
    ("claimed", "claimed from dead consumers", "{:,}"),
    ("reconnects", "consumer reconnects", "{:,}"),
    ("throughput", "throughput, messages/s", "{:,}"),
    ("peakProduced", "peak produced, messages/s", "{:,}"),
    ("peakAcknowledged", "peak acknowledged, messages/s", "{:,}"),
    ("ceiling", "ceiling: the broker's own tool, messages/s, same run", "{:,}"),
    ("ceilingTool", "ceiling measured by", "{}"),
    ("wallSeconds", "wall seconds", "{:.1f}"),
)


def rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """The summary as (label, value) rows, the same on the terminal and in the page."""
    s = result["summary"]
    out = [(label, fmt.format(s[key])) for key, label, fmt in SUMMARY_ROWS if s.get(key) is not None]
    for name, value in (s.get("latencyMs") or {}).items():
        out.append((f"end-to-end latency {name.replace('p999', 'p99.9')}", f"{value:,.2f} ms"))
    return out


def html_page(result: dict[str, Any]) -> str:
    scenario = Scenario.model_validate(result["scenario"])
    table = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in rows(result))
    faults = "".join(
        f"<li>{f['t']:.1f} s: {html.escape(f['action'])} {html.escape(str(f.get('consumer', '')))}</li>"
        for f in result["faults"]
    )
    plots = "".join(
        f'<figure><img alt="{html.escape(title)}" src="data:image/png;base64,{png}" '
        f"onload=\"this.dataset.loaded='true'\"><figcaption>{html.escape(title)}</figcaption></figure>"
        for title, png in _plots(result, scenario)
    )
    lost = result["summary"]["lost"]
    verdict = "no message lost" if lost == 0 else f"{lost} LOST"
    name = html.escape(scenario.name)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>dataworks bench stream: {name}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; }} th, td {{ padding: .25em .8em; border-bottom: 1px solid #ddd; }}
th {{ text-align: left; font-weight: normal; color: #444; }} td {{ text-align: right; }}
figure {{ margin: 1.5em 0; }} img {{ max-width: 100%; }}
</style></head>
<body>
<h1>{name}: {verdict}</h1>
<p>{html.escape(scenario.description)}</p>
<table id="summary">{table}</table>
<h2>Faults</h2><ul id="faults">{faults or "<li>none</li>"}</ul>
<div id="plots">{plots}</div>
</body></html>
"""


def _plots(result: dict[str, Any], scenario: Scenario) -> list[tuple[str, str]]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    samples = result["samples"]
    t = [s["t"] for s in samples]
    faults = [f["t"] for f in result["faults"]]
    config = scenario.generator_config()
    schedule = Schedule(config)
    m = config.time_multiplier
    out: list[tuple[str, str]] = []

    def figure(title: str, draw: Any, ylabel: str, log: bool = False) -> None:
        fig, ax = plt.subplots(figsize=(10, 3.2))
        draw(ax)
        for x in faults:
            ax.axvline(x, color="red", linestyle="--", linewidth=1)
        ax.set_xlabel("seconds")
        ax.set_ylabel(ylabel)
        if log:
            ax.set_yscale("log")
        ax.legend(loc="upper left")
        ax.set_title(title)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=80)
        plt.close(fig)
        out.append((title, base64.b64encode(buf.getvalue()).decode()))

    produced = _per_second(t, [s.get("produced") for s in samples])

    def rates(ax: Any) -> None:
        ax.plot(t, [schedule.rate(int(x * m)) * m for x in t], color="grey", label="schedule")
        ax.plot(t, produced, label="produced")
        ax.plot(t, _per_second(t, [s.get("acked") for s in samples]), label="acknowledged")

    def lag(ax: Any) -> None:
        ax.plot(t, [s.get("lag") for s in samples], label="lag (entries)")
        twin = ax.twinx()
        twin.step(t, [s["consumers"] for s in samples], where="post", color="green", label="consumers")
        twin.set_ylabel("consumers")

    def latency(ax: Any) -> None:
        for key, name in (("p50", "p50"), ("p99", "p99"), ("p999", "p99.9")):
            ax.plot(t, [s.get(key) for s in samples], label=name)

    def cpu(ax: Any) -> None:
        for role in ("producer", "consumers", "redis"):
            if any(role in s.get("resources", {}) for s in samples):
                ax.plot(t, [_cores(s.get("resources", {}).get(role)) for s in samples], label=role)

    figure("Rate: the schedule, produced and acknowledged", rates, "messages/s")
    figure("Lag and consumers", lag, "entries")
    figure("End-to-end latency (worst consumer each second)", latency, "ms", log=True)
    figure("CPU (user + system)", cpu, "cores")
    return out


def _per_second(t: list[float], counts: list[int | None]) -> list[float | None]:
    """A counter's rate between consecutive samples (None where it was not read)."""
    out: list[float | None] = []
    last: tuple[float, int] | None = None
    for x, c in zip(t, counts, strict=True):
        out.append(None if c is None or last is None or x <= last[0] else (c - last[1]) / (x - last[0]))
        last = (x, c) if c is not None else last
    return out


def _cores(role: dict[str, float] | None) -> float | None:
    return None if not role else role["user"] + role["system"]
