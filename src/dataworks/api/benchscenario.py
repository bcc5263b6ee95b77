"""A stream benchmark scenario (pure layer): `dataworks bench stream SCENARIO.yaml`.

The broker, the generator's configuration (api/generator.py, paced in real time), the local
consumer group (a fixed count, or a StreamingJob's autoscaled consumers), how long to produce,
and the faults to inject, at given seconds or at seconds drawn from a seed (core/streams/chaos.py).
Validated before anything starts, like every other input.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from dataworks.api.generator import GeneratorConfig
from dataworks.api.meta import Model
from dataworks.api.pods import ResourceRequirements
from dataworks.api.streamingjob import KAFKA_SERVERS, StreamingJobSpec


class RedisSetup(Model):
    """The broker: started by the benchmark (the default) or an existing one."""

    url: str | None = Field(None, description="Use this Redis (redis://HOST:PORT/DB); default: start one.")
    appendfsync: Literal["off", "everysec", "always"] = Field(
        "off", description="Persistence of a started Redis: off, or AOF with this fsync policy."
    )
    stream: str = Field("bench", description="The stream's key (deleted at the start).")


class KafkaSetup(Model):
    """A Kafka the benchmark reads and writes (it does not start one)."""

    bootstrap: str = Field(pattern=KAFKA_SERVERS, description="HOST:PORT[,HOST:PORT...] of the brokers.")
    topic: str = Field(
        "bench",
        pattern=r"^[A-Za-z0-9._-]+$",
        max_length=200,
        description="The topic's prefix: each run creates <topic>-<unix time>.",
    )
    partitions: int = Field(4, ge=1, le=1000, description="The run's topic's partitions.")


class ConsumerSetup(Model):
    """The consumer group: local `dataworks consume` processes."""

    count: int = Field(1, ge=1, le=64, description="Consumers at the start.")
    batch: int = Field(100, ge=1, le=10_000, description="XREADGROUP COUNT.")
    block_ms: int = Field(100, ge=0, description="XREADGROUP BLOCK.")
    claim_idle_ms: int = Field(1000, ge=100, description="Claim a dead consumer's entries after this.")
    commit_every: float = Field(0.5, gt=0, description="Seconds between report commits (XACKs follow).")
    resources: ResourceRequirements | None = Field(
        None,
        description="Each consumer's limits (cpu, memory), enforced as a kubelet does, by a cgroup of "
        "its own: over its CPU it is throttled, over its memory it is OOM-killed.",
    )

    @model_validator(mode="after")
    def _commit_before_claim(self) -> ConsumerSetup:
        if self.commit_every * 1000 >= self.claim_idle_ms:
            raise ValueError(
                "commitEvery must be shorter than claimIdleMs: a consumer's uncommitted entries would "
                "be claimed by the others while it still holds them"
            )
        return self


FaultAction = Literal["killConsumer", "restartRedis", "pauseProducer", "addConsumer"]


class Fault(Model):
    """Something that goes wrong, `at` seconds after the producer starts."""

    at: float = Field(ge=0)
    action: FaultAction = Field(
        description="killConsumer: SIGKILL one, a replacement starts a second later; restartRedis: "
        "stop it (SIGTERM) and start it again after `seconds`; pauseProducer: SIGSTOP for `seconds`; "
        "addConsumer: one more consumer."
    )
    seconds: float = Field(2.0, gt=0, description="How long a restart or a pause lasts.")


def least_gap(action: str, seconds: float) -> float:
    """The shortest time between two random faults of `action`: a restart or a pause is over
    and a second has passed; a killed consumer's replacement has started (a second later)."""
    return seconds + 1.0 if action in ("restartRedis", "pauseProducer") else 1.0


class RandomFaults(Model):
    """Faults at random times, drawn from `seed`: one seed, one sequence of faults (chaos that
    can be run again). For each action the gaps are its least gap plus an exponential draw,
    so they average `every[action]`."""

    seed: int = Field(0, description="The one source of the faults' randomness.")
    every: dict[FaultAction, float] = Field(
        min_length=1, description="For each action, the mean seconds between two of its faults."
    )
    seconds: float = Field(2.0, gt=0, description="How long each restart or pause lasts.")
    after: float = Field(5.0, ge=0, description="No random fault before this second (the group settles).")

    @model_validator(mode="after")
    def _gaps_fit(self) -> RandomFaults:
        for action, mean in self.every.items():
            least = least_gap(action, self.seconds)
            if mean <= least:
                raise ValueError(
                    f"every.{action} ({mean:g} s) must be above {least:g} s: a fault of it must be over, "
                    "and a second passed, before the next"
                )
        return self


class Scenario(Model):
    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$", description="Names the results and the report.")
    description: str = ""
    duration_seconds: float = Field(gt=0, le=86_400, description="Wall seconds the producer runs.")
    drain_seconds: float = Field(
        60, ge=0, description="After the producer stops, how long to wait for lag 0."
    )
    generator: dict[str, Any] = Field(
        default_factory=dict,
        description="Generator settings (docs/streaming-bench.md); the bench sets count and duration.",
    )
    redis: RedisSetup = Field(default_factory=RedisSetup)
    kafka: KafkaSetup | None = Field(None, description="Run on this Kafka instead of a Redis.")
    consumers: ConsumerSetup = Field(default_factory=ConsumerSetup)
    streaming_job: dict[str, Any] | None = Field(
        None,
        description="Instead of a fixed group: a StreamingJob's spec without its source (the bench fills "
        "it), run on this machine by the operator's own controller, whose autoscaler sets the consumer "
        "count (consumers.count is then unused; consumers.commitEvery still applies).",
    )
    faults: list[Fault] = Field(default_factory=list, description="Faults at given seconds.")
    random_faults: RandomFaults | None = Field(
        None, description="Faults at random seconds, drawn from a seed, beside the given ones."
    )

    def actions(self) -> set[str]:
        """Every action the run may inject, given or drawn."""
        drawn = set(self.random_faults.every) if self.random_faults else set()
        return {f.action for f in self.faults} | drawn

    @model_validator(mode="after")
    def _generator_is_valid(self) -> Scenario:
        for key in ("count", "durationSeconds", "duration_seconds"):
            if key in self.generator:
                raise ValueError(f"generator.{key} is set by the benchmark, from durationSeconds")
        self.generator_config()  # raises with the generator's own field names
        if any(f.at >= self.duration_seconds for f in self.faults):
            raise ValueError("a fault's `at` must fall within durationSeconds")
        if self.kafka is not None:
            if self.redis != RedisSetup():
                raise ValueError("give redis or kafka, not both: the benchmark runs on one broker")
            if "restartRedis" in self.actions():
                raise ValueError("restartRedis: the benchmark restarts only a Redis it started, not kafka")
        if self.streaming_job is not None:
            if "source" in self.streaming_job:
                raise ValueError("streamingJob.source is set by the benchmark, from redis or kafka")
            source = {"redis": {"address": "redis://127.0.0.1:6379/0", "stream": "s", "group": "g"}}
            StreamingJobSpec.model_validate({**self.streaming_job, "source": source})
            if "addConsumer" in self.actions():
                raise ValueError("addConsumer: with a streamingJob, its autoscaler sets the consumer count")
        return self

    def generator_config(self) -> GeneratorConfig:
        """The generator's configuration: the scenario's wall seconds in schedule seconds."""
        raw = dict(self.generator)
        raw["durationSeconds"] = self.duration_seconds * float(raw.get("timeMultiplier", 1.0))
        return GeneratorConfig.model_validate(raw)
