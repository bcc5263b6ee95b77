"""CPU and memory limits for processes on this machine (edge layer), as a kubelet sets them.

A container's `resources.limits` become a control group of its own, as the kubelet's
container runtime makes one per container:
- `cpu` is a CFS quota over a 100 ms period (500m: 50 ms of CPU time in each 100 ms), so a
  process over its limit is throttled, and its cgroup's `cpu.stat` counts the throttled
  periods, which a StreamingJob's consumers report (streams/processing.Throttling);
- `memory` is the group's hard limit: over it, the kernel's OOM killer ends the process,
  and `oom_killed()` says so, as a kubelet reports `OOMKilled`.

It needs a writable cgroup hierarchy: cgroup v2 with the cpu and memory controllers (a root
shell, or a delegated subtree), or cgroup v1's cpu and memory hierarchies. Without one,
`Hierarchy.detect()` is None and limits are not enforced (the caller says so once); requests
are never enforced, as a kubelet uses them only for scheduling and shares.
"""

from __future__ import annotations

import contextlib
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dataworks.core.kit.quantities import parse_quantity

log = logging.getLogger(__name__)

ROOT = Path("/sys/fs/cgroup")
PARENT = "dataworks"  # every group this machine makes is under this one
PERIOD_US = 100_000  # the CFS period a kubelet uses


@dataclass(frozen=True)
class Limits:
    cpu: float | None = None  # cores
    memory: int | None = None  # bytes

    @classmethod
    def of(cls, container: dict[str, Any]) -> Limits:
        """A container spec's `resources.limits` (quantities validated by the kind's schema)."""
        limits = (container.get("resources") or {}).get("limits") or {}
        cpu, memory = limits.get("cpu"), limits.get("memory")
        return cls(
            cpu=float(parse_quantity(cpu)) if cpu is not None else None,
            memory=int(parse_quantity(memory)) if memory is not None else None,
        )

    def __bool__(self) -> bool:
        return self.cpu is not None or self.memory is not None


@dataclass(frozen=True)
class Hierarchy:
    """Where this machine's cgroups can be made: v2's one tree, or v1's cpu and memory trees."""

    version: int
    cpu: Path  # the parent group for CPU limits (v2: the same as memory)
    memory: Path

    @classmethod
    def detect(cls, root: Path = ROOT) -> Hierarchy | None:
        unified = root / "cgroup.controllers"
        if unified.exists():
            if not {"cpu", "memory"} <= set(unified.read_text().split()):
                return None
            parent = root / PARENT
            try:
                parent.mkdir(exist_ok=True)
                # Hand both controllers down: to the root's children, then to ours.
                for where in (root, parent):
                    (where / "cgroup.subtree_control").write_text("+cpu +memory")
            except OSError:
                return None
            return cls(2, parent, parent)
        cpu, memory = root / "cpu" / PARENT, root / "memory" / PARENT
        try:
            cpu.mkdir(exist_ok=True)
            memory.mkdir(exist_ok=True)
        except OSError:
            return None
        if not (os.access(cpu, os.W_OK) and os.access(memory, os.W_OK)):
            return None
        return cls(1, cpu, memory)

    def group(self, name: str, limits: Limits) -> Group:
        """A new group named `name` (a pod's name, unique on this machine) with `limits`."""
        dirs = [self.cpu / name] if self.version == 2 else [self.cpu / name, self.memory / name]
        for d in dirs:
            d.mkdir(exist_ok=True)
        g = Group(self, self.cpu / name, self.memory / name)
        if limits.cpu is not None:
            quota = max(1000, round(limits.cpu * PERIOD_US))  # the kernel's least quota is 1 ms
            if self.version == 2:
                (g.cpu / "cpu.max").write_text(f"{quota} {PERIOD_US}")
            else:
                (g.cpu / "cpu.cfs_period_us").write_text(str(PERIOD_US))
                (g.cpu / "cpu.cfs_quota_us").write_text(str(quota))
        if limits.memory is not None:
            if self.version == 2:
                (g.memory / "memory.max").write_text(str(limits.memory))
                with contextlib.suppress(OSError):  # no swap to fall back on, as under a kubelet
                    (g.memory / "memory.swap.max").write_text("0")
            else:
                (g.memory / "memory.limit_in_bytes").write_text(str(limits.memory))
        return g


@dataclass(frozen=True)
class Group:
    hierarchy: Hierarchy
    cpu: Path
    memory: Path

    def add(self, pid: int) -> None:
        """Move the process `pid` in (its children, started after, follow it)."""
        dirs = {self.cpu, self.memory}
        for d in dirs:
            (d / ("cgroup.procs" if self.hierarchy.version == 2 else "tasks")).write_text(str(pid))

    def oom_kills(self) -> int:
        """How many processes of the group the OOM killer ended."""
        events = self.memory / ("memory.events" if self.hierarchy.version == 2 else "memory.oom_control")
        try:
            fields = dict(line.split()[:2] for line in events.read_text().splitlines() if line.strip())
        except OSError:
            return 0
        return int(fields.get("oom_kill", 0))

    def remove(self) -> None:
        """Remove the group once its processes are gone (a group with a process stays)."""
        for d in {self.cpu, self.memory}:
            with contextlib.suppress(OSError):
                d.rmdir()

    def end(self) -> bool:
        """After its process ended: remove the group; whether the OOM killer ended it."""
        oom = self.oom_kills() > 0
        self.remove()
        return oom


class Limiter:
    """Gives each process started under a container's limits a group of its own, and says
    once, at the first limit it cannot enforce, that this machine has no cgroup to write."""

    def __init__(self, hierarchy: Hierarchy | None) -> None:
        self.hierarchy = hierarchy
        self.warned = False

    def start(self, name: str, limits: Limits, pid: int) -> Group | None:
        if not limits:
            return None
        if self.hierarchy is None:
            if not self.warned:
                log.warning(
                    "resources.limits are not enforced on this machine: no writable cgroup hierarchy "
                    "(run as root, or delegate a cgroup v2 subtree)"
                )
                self.warned = True
            return None
        try:
            group = self.hierarchy.group(name, limits)
            group.add(pid)
        except OSError as e:
            log.warning("resources.limits of %s are not enforced: %s", name, e)
            return None
        return group


_DEFAULT: list[Limiter] = []


def default() -> Limiter:
    """This machine's limiter, found once per process."""
    if not _DEFAULT:
        _DEFAULT.append(Limiter(Hierarchy.detect()))
    return _DEFAULT[0]
