"""A TrainingJob's progress in its status, and the Stalled condition (pure layer).

Rank 0 prints `DATAWORKS_PROGRESS {json}` lines (`dataworks.training.report`);
the controller reads the tail of its log at most every PROGRESS_POLL_SECONDS
while the workers run, and the last such line becomes `currentEpoch`,
`totalEpochs`, `progress` ("45%"), `metrics` and `estimatedCompletion`. When that line has not
changed for `progressDeadlineSeconds`, `Stalled` turns True (a hung
collective is noticed by no peer); it turns False as soon as it moves again.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dataworks.api import trainingjob as api
from dataworks.core.kit import conditions
from dataworks.core.kit.clock import parse_ts, ts
from dataworks.training.progress import Progress, parse_progress

PROGRESS_POLL_SECONDS = 5  # freshness target 10 s, and at most one status write per 5 s


def last_progress(log_tail: str) -> Progress | None:
    """The last progress line of a log's tail, or None."""
    for line in reversed(log_tail.splitlines()):
        found = parse_progress(line)
        if found is not None:
            return found
    return None


def _eta(start: str | None, epoch: int, total: int, now: datetime) -> str | None:
    """The end of the last epoch at the pace so far: the time since the start (pending workers and
    restarts included, so it errs late) per epoch done, times the epochs left."""
    if start is None or epoch <= 0 or total <= epoch:
        return None
    per_epoch = (now - parse_ts(start)) / epoch
    return ts(now + per_epoch * (total - epoch))


def apply(
    st: api.TrainingJobStatus,
    found: Progress | None,
    deadline_seconds: int,
    *,
    now: datetime,
    generation: int,
) -> datetime:
    """Record `found` in the status (a change is progress); set Stalled; return when to look again."""
    if found is not None:
        epoch, total = found["epoch"], found["totalEpochs"]
        metrics = {k: round(v, 6) for k, v in found["metrics"].items()}
        moved = (epoch, found.get("step"), metrics) != (st.current_epoch, st.current_step, st.metrics)
        st.current_epoch, st.total_epochs, st.current_step, st.metrics = (
            epoch,
            total,
            found.get("step"),
            metrics,
        )
        st.progress = f"{min(100, int(100 * epoch / total))}%" if total > 0 else None
        if moved or st.estimated_completion is None:  # only a new report moves it: no extra writes
            st.estimated_completion = _eta(st.start_time, epoch, total, now)
        if moved or st.last_progress_time is None:
            st.last_progress_time = ts(now)
        run = found.get("mlflow")
        if run is not None:
            st.tracking = api.TrackingStatus(mlflow_run_id=run["runId"], mlflow_run_url=run["url"] or None)
        saved = found.get("checkpoint")
        if saved is not None:
            when = datetime.fromtimestamp(saved["time"], tz=UTC)
            st.last_checkpoint = api.LastCheckpoint(
                epoch=saved["epoch"], step=saved["step"], path=saved["path"], time=ts(when)
            )
    since = st.last_progress_time or st.start_time
    if since is not None:
        quiet = (now - parse_ts(since)).total_seconds()
        stalled = quiet > deadline_seconds
        if stalled or conditions.is_true(st.conditions, "Stalled"):
            message = (
                f"no progress for {int(quiet)}s (progressDeadlineSeconds: {deadline_seconds})"
                if stalled
                else "progressing again"
            )
            reason = "ProgressDeadlineExceeded" if stalled else "Progressing"
            conditions.set_condition(
                st.conditions,
                "Stalled",
                stalled,
                reason=reason,
                message=message,
                now=now,
                generation=generation,
            )
    return now + timedelta(seconds=PROGRESS_POLL_SECONDS)
