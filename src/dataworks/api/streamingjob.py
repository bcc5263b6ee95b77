"""The StreamingJob resource, dataworks.io/v1 (pure layer).

A consumer group on a Redis stream or a Kafka topic, run as a Deployment of consumers whose count the
operator sets from the group's lag and arrival rate (core/streamingjobs/scaling.py), with
a strategy (throughput, latency, cost) chosen by schedule windows and load rules
(core/streamingjobs/strategies.py). These models are the one definition of the resource:
the operator parses with them and `dataworks.api.crdgen` renders the CRD, with a `scale`
subresource (`kubectl scale stj/NAME --replicas N` sets a manual override).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from dataworks.api.common import DNS1123_LABEL
from dataworks.api.meta import GROUP, VERSION, Condition, KindInfo, Model, StatusModel
from dataworks.api.pods import ResourceRequirements
from dataworks.api.streamalerts import AlertSpec

KIND = "StreamingJob"
PLURAL = "streamingjobs"
OWNER_LABEL = "dataworks.io/streamingjob"
# With the value "broker", each consumer also commits its report (what it processed, by
# sequence number) to the broker: what `dataworks bench stream --cluster` checks for loss.
CONSUMER_REPORTS = "dataworks.io/consumer-reports"
MAX_REPLICAS = 1000
MAX_NAME = 47  # the Deployment's pods are <name>-<10>-<5>: a pod name (the consumer name) within 63

FreeForm = dict[str, Any]
StrategyName = Literal["throughput", "latency", "cost"]
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
Day = Literal["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
CLOCK = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"


class SecretKey(Model):
    """One key of a Secret in the StreamingJob's namespace."""

    name: str = Field(min_length=1, max_length=253, pattern=DNS1123_LABEL, description="The Secret's name.")
    key: str = Field(min_length=1, description="The key within the Secret.")


class RedisSource(Model):
    """A Redis stream read by one consumer group."""

    address: str = Field(
        pattern=r"^rediss?://[^@/\s]+(:[0-9]+)?(/[0-9]+)?$",
        description="redis://HOST:PORT[/DB] (rediss:// for TLS), with no credential in it: the password "
        "comes from passwordSecret.",
    )
    password_secret: SecretKey | None = Field(
        None,
        description="The Secret key holding the password. The consumers get it as REDIS_PASSWORD; the "
        "operator reads it (get, by name) to measure the group's lag.",
    )
    stream: str = Field(min_length=1, max_length=512, description="The stream's key.")
    group: str = Field(min_length=1, max_length=256, description="The consumer group (created if missing).")
    start_from: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a group that does not exist yet starts: the stream's first entry, or only "
        "entries added from now on.",
    )


KAFKA_SERVERS = r"^[A-Za-z0-9.-]+:[0-9]{1,5}(,[A-Za-z0-9.-]+:[0-9]{1,5})*$"


class KafkaTLS(Model):
    """TLS to the brokers (security.protocol SSL, or SASL_SSL with `sasl`)."""

    ca_secret: SecretKey | None = Field(
        None,
        description="The Secret key holding the CA certificate(s) in PEM that signed the brokers' "
        "certificates; the system's CAs when absent.",
    )


class KafkaSASL(Model):
    """SASL authentication to the brokers (security.protocol SASL_SSL with `tls`, else
    SASL_PLAINTEXT, which sends a PLAIN password in the clear: use it with `tls`)."""

    mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = Field(
        "SCRAM-SHA-512", description="The SASL mechanism the brokers' listener enables."
    )
    secret_name: str = Field(
        min_length=1,
        max_length=253,
        pattern=DNS1123_LABEL,
        description="The Secret holding the username and the password (the consumers get them as "
        "KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD; the operator reads them, get by name, to "
        "measure the group's lag).",
    )
    username_key: str = Field("username", min_length=1, description="The username's key in the Secret.")
    password_key: str = Field("password", min_length=1, description="The password's key in the Secret.")

    def protocol(self, tls: KafkaTLS | None) -> str:
        return "SASL_SSL" if tls is not None else "SASL_PLAINTEXT"


class KafkaSource(Model):
    """A Kafka topic read by one consumer group (the KIP-848 `consumer` group protocol)."""

    bootstrap_servers: str = Field(
        pattern=KAFKA_SERVERS,
        description="HOST:PORT[,HOST:PORT...] of the brokers, with no credential in it.",
    )
    tls: KafkaTLS | None = Field(None, description="Connect with TLS ({} trusts the system's CAs).")
    sasl: KafkaSASL | None = Field(None, description="Authenticate with SASL, from a Secret.")
    topic: str = Field(
        min_length=1, max_length=249, pattern=r"^[A-Za-z0-9._-]+$", description="The topic's name."
    )
    group: str = Field(min_length=1, max_length=256, description="The consumer group.")
    start_from: Literal["earliest", "latest"] = Field(
        "earliest",
        description="Where a group with no committed offset starts: each partition's first message, "
        "or only messages produced from now on.",
    )


@dataclass(frozen=True)
class Target:
    """What a source names, whatever its broker (the controller and the builders read it)."""

    broker: Literal["redis", "kafka"]
    address: str
    stream: str  # a Redis stream, or a Kafka topic
    group: str
    start_from: Literal["earliest", "latest"]
    password_secret: SecretKey | None = None
    kafka: KafkaSource | None = None  # its TLS and SASL settings

    def secret_keys(self) -> list[tuple[str, SecretKey]]:
        """(environment variable, Secret key) of each credential the consumers get."""
        if self.kafka is None:
            return [("REDIS_PASSWORD", self.password_secret)] if self.password_secret else []
        k, out = self.kafka, []
        if k.sasl is not None:
            out += [
                ("KAFKA_SASL_USERNAME", SecretKey(name=k.sasl.secret_name, key=k.sasl.username_key)),
                ("KAFKA_SASL_PASSWORD", SecretKey(name=k.sasl.secret_name, key=k.sasl.password_key)),
            ]
        if k.tls is not None and k.tls.ca_secret is not None:
            out.append(("KAFKA_SSL_CA_PEM", k.tls.ca_secret))
        return out

    def kafka_settings(self) -> dict[str, str]:
        """The environment variables of the Kafka security settings that are no credential."""
        k = self.kafka
        if k is None or (k.tls is None and k.sasl is None):
            return {}
        if k.sasl is None:
            return {"KAFKA_SECURITY_PROTOCOL": "SSL"}
        return {"KAFKA_SECURITY_PROTOCOL": k.sasl.protocol(k.tls), "KAFKA_SASL_MECHANISM": k.sasl.mechanism}


class Source(Model):
    """Where the messages come from: exactly one of `redis` and `kafka`."""

    redis: RedisSource | None = Field(None, description="A Redis stream and consumer group.")
    kafka: KafkaSource | None = Field(
        None,
        description="A Kafka topic and consumer group; the consumer count is capped by the topic's "
        "partition count.",
    )

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "has(self.redis) != has(self.kafka)",
            "message": "spec.source needs exactly one of redis and kafka",
        }
    ]

    @model_validator(mode="after")
    def _one(self) -> Source:
        if (self.redis is None) == (self.kafka is None):
            raise ValueError("needs exactly one of redis and kafka")
        return self

    def target(self) -> Target:
        if self.kafka is not None:
            k = self.kafka
            return Target("kafka", k.bootstrap_servers, k.topic, k.group, k.start_from, kafka=k)
        assert self.redis is not None  # _one
        r = self.redis
        return Target("redis", r.address, r.stream, r.group, r.start_from, r.password_secret)


class SinkSpec(Model):
    """Where micro-batches are written, as Parquet files."""

    url: str = Field(
        pattern=r"^((s3|gs|gcs|az|abfs|file)://\S+|postgres(ql)?://[^@/\s]+/[A-Za-z0-9_]+\?table=[A-Za-z_][A-Za-z0-9_.]*)$",
        description="A folder URL (s3://bucket/prefix, file:///path, ...): each consumer writes one "
        "Parquet file per micro-batch there, <consumer>-<n>.parquet, whole or not at all. Or a "
        "PostgreSQL table, postgresql://HOST[:PORT]/DB?table=NAME (no credential in the URL: "
        "PGUSER and PGPASSWORD from secretName): each micro-batch is COPYed in and committed.",
    )
    secret_name: str | None = Field(
        None,
        pattern=DNS1123_LABEL,
        description="A Secret whose keys become the consumers' environment, for the store's "
        "credentials (e.g. AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_ENDPOINT_URL; PGUSER, PGPASSWORD).",
    )


CONSUMER_ENV = "DATAWORKS_CONSUMER"  # the container processing's consumer arguments, as JSON


class ContainerSpec(Model):
    """The user's own consumer image, built on the consumer library (`dataworks.consumer`)."""

    image: str = Field(min_length=1, description="The image; it has Python and dataworks[streams].")
    command: list[str] = Field(
        min_length=1,
        description='What runs, e.g. ["python", "-m", "enricher"]: a program that calls '
        "dataworks.consumer.run(handle), which reads its source and group from DATAWORKS_CONSUMER.",
    )
    args: list[str] | None = Field(None, description="Arguments after the command.")
    secret_name: str | None = Field(
        None,
        pattern=DNS1123_LABEL,
        description="A Secret whose keys become the program's environment (its own credentials).",
    )


class Processing(Model):
    """What is done with each message. Every type counts and checks the messages as `count`
    does (duplicates dropped by message_id); `sql` and `sink` also act on each micro-batch
    before it is acknowledged."""

    type: Literal["count", "sql", "sink", "alert", "container"] = Field(
        "count",
        description="count: decode each JSON message and count it per symbol (the seed's baseline "
        "consumer), dropping duplicates by message_id. sql: also run `query` (DuckDB) over each "
        "micro-batch, a table named batch, and write its rows to `sink` (or to the log without one). "
        "sink: also write each micro-batch (through `query` when given) to `sink` as Parquet. "
        "alert: also evaluate `alert.rules` on each message, and send what they raise to "
        "`alert.stream` and `alert.webhooks`. container: run `container.image`, the user's program "
        "on the consumer library, which hands it each micro-batch before acknowledging it.",
    )
    dedupe_window: int = Field(
        100_000, ge=0, le=10_000_000, description="How many recent message_ids a consumer remembers."
    )
    query: str | None = Field(
        None,
        min_length=1,
        max_length=65_536,
        description="One DuckDB SELECT over the micro-batch (the table `batch`, one column per field "
        "of the messages), e.g. SELECT symbol, avg(price) AS price FROM batch GROUP BY symbol.",
    )
    sink: SinkSpec | None = Field(None, description="Where sql and sink write (Parquet files).")
    alert: AlertSpec | None = Field(None, description="The alert processing's rules and destinations.")
    container: ContainerSpec | None = Field(None, description="The container processing's image and program.")

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": "!has(self.type) || self.type != 'sql' || has(self.query)",
            "message": "spec.processing: type sql needs a query, one DuckDB SELECT over the table batch",
        },
        {
            "rule": "!has(self.type) || self.type != 'sink' || has(self.sink)",
            "message": "spec.processing: type sink needs sink.url, the folder the Parquet files go to",
        },
        {
            "rule": "(has(self.type) && self.type != 'count') || (!has(self.query) && !has(self.sink))",
            "message": "spec.processing: query and sink are for type sql or sink; type count only counts",
        },
        {
            "rule": "(has(self.type) && self.type == 'alert') == has(self.alert)",
            "message": "spec.processing: type alert needs alert.rules, and alert is for type alert only",
        },
        {
            "rule": "!has(self.type) || self.type != 'alert' || (!has(self.query) && !has(self.sink))",
            "message": "spec.processing: query and sink are for type sql or sink, not alert",
        },
        {
            "rule": "(has(self.type) && self.type == 'container') == has(self.container)",
            "message": "spec.processing: type container needs container.image and container.command, "
            "and container is for type container only",
        },
    ]

    @model_validator(mode="after")
    def _needs(self) -> Processing:
        if self.type == "sql" and self.query is None:
            raise ValueError("type sql needs a query: one DuckDB SELECT over the table batch")
        if self.type == "sink" and self.sink is None:
            raise ValueError("type sink needs sink.url: the folder the Parquet files go to")
        if self.type in ("count", "alert") and (self.query is not None or self.sink is not None):
            raise ValueError(f"query and sink are for type sql or sink; type {self.type} {_USES[self.type]}")
        if (self.type == "alert") != (self.alert is not None):
            raise ValueError("type alert needs alert.rules, and alert is for type alert only")
        if (self.type == "container") != (self.container is not None):
            raise ValueError(
                "type container needs container.image and container.command, and container is for "
                "type container only"
            )
        if self.type == "container" and (self.query is not None or self.sink is not None):
            raise ValueError("query and sink are for type sql or sink; type container runs its own program")
        if self.query is not None:
            _one_select(self.query)
        return self


_USES = {"count": "only counts", "alert": "evaluates alert.rules"}


def _one_select(query: str) -> None:
    """Parse (without running) `query`: one SELECT, or a ValueError naming what is wrong."""
    import duckdb

    try:
        statements = duckdb.extract_statements(query)
    except duckdb.Error as e:
        raise ValueError(f"query: {str(e).splitlines()[0]}") from None
    if len(statements) != 1 or statements[0].type != duckdb.StatementType.SELECT:
        raise ValueError("query must be exactly one SELECT statement")


class Window(Model):
    """A strategy for a window of the day, on a clock of its own."""

    strategy: StrategyName
    start: str = Field(pattern=CLOCK, description='Local start time, "HH:MM".')
    end: str = Field(pattern=CLOCK, description='Local end time, "HH:MM" (before start: crosses midnight).')
    timezone: str = Field("UTC", min_length=1, description="IANA time zone, e.g. America/New_York.")
    days: list[Day] | None = Field(None, description="Days the window applies (default every day).")

    @field_validator("timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone {value!r}: use an IANA name such as America/New_York"
            ) from None
        return value


class LoadRule(Model):
    """A strategy while messages arrive faster than a rate."""

    strategy: StrategyName
    above_rate: float = Field(gt=0, description="Messages per second.")


class StrategySpec(Model):
    """Which allocation strategy is active: a load rule that matches, else a schedule window
    that contains now, else the default."""

    default: StrategyName = Field("throughput", description="The strategy outside windows and rules.")
    schedule: list[Window] = Field(default_factory=list, max_length=20)
    load_rules: list[LoadRule] = Field(default_factory=list, max_length=10)


class Scaling(Model):
    """Bounds and targets of the autoscaler."""

    min_replicas: int = Field(1, ge=0, le=1000, description="Fewest consumers (0: scale to zero when idle).")
    max_replicas: int = Field(10, ge=1, le=1000, description="Most consumers.")
    queue_delay_seconds: float = Field(
        5.0, gt=0, le=3600, description="The latency SLO: lag / arrival rate, in seconds."
    )
    idle_seconds: float = Field(
        300.0, ge=0, le=86400, description="With minReplicas 0: nothing arrived nor waited this long."
    )
    consumer_rate: float = Field(
        1000.0, gt=0, description="Messages/s one consumer processes, until the consumers report theirs."
    )
    catch_up_seconds: float | None = Field(
        None, gt=0, le=86400, description="How fast a backlog should drain (default: the strategy's)."
    )
    scale_up_window_seconds: float | None = Field(
        None,
        ge=0,
        le=3600,
        description="A scale-up takes the smallest count recommended over this window (default: the "
        "strategy's; 0 acts at once).",
    )
    scale_down_window_seconds: float | None = Field(
        None,
        ge=0,
        le=86400,
        description="A scale-down takes the largest count recommended over this window (default: the "
        "strategy's), so a dip shorter than it does not scale down.",
    )

    @model_validator(mode="after")
    def _bounds(self) -> Scaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError(
                f"minReplicas ({self.min_replicas}) must not exceed maxReplicas ({self.max_replicas})"
            )
        return self


class StreamingJobSpec(Model):
    """The stream to consume, how, and how many consumers."""

    source: Source
    processing: Processing = Field(default_factory=Processing)
    strategy: StrategySpec = Field(default_factory=StrategySpec)
    scaling: Scaling = Field(default_factory=Scaling)
    replicas: int | None = Field(
        None,
        ge=0,
        le=MAX_REPLICAS,
        description="A manual override of the consumer count (kubectl scale, dataworks scale); remove "
        "it (dataworks scale --auto) to return to the autoscaler.",
    )
    batch_size: int | None = Field(
        None, ge=1, le=10_000, description="XREADGROUP COUNT (default: the active strategy's)."
    )
    block_ms: int | None = Field(
        None, ge=0, le=60_000, description="XREADGROUP BLOCK (default: the active strategy's)."
    )
    image: str | None = Field(
        None, description="Consumer image (default: the operator's streamingJobs.image)."
    )
    resources: ResourceRequirements | None = Field(None, description="Requests and limits of each consumer.")
    node_selector: dict[str, str] | None = Field(None, description="Node selector of the consumers.")
    tolerations: list[FreeForm] | None = Field(None, description="Tolerations of the consumers.")
    service_account_name: str | None = Field(None, description="ServiceAccount of the consumers.")
    suspend: bool = Field(False, description="Pause: no consumer runs; messages wait in the stream.")


State = Literal["Pending", "Running", "Idle", "Suspended", "Degraded", "Failed"]


class Decision(StatusModel):
    """The autoscaler's last decision."""

    replicas: int
    reason: str = Field(
        description="ScaleUp, ScaleDown, ScaleToZero, WakeUp, Steady, Stabilizing, Manual, Anomaly."
    )
    message: str = ""
    time: str | None = None


class AnomalyStatus(StatusModel):
    """An anomaly that is active now (core/streamingjobs/anomalies.py), and what is done about it."""

    type: str = Field(description="LatencySpike, ThroughputDrop, ErrorRate, CPUThrottled or OOMKilled.")
    since: str = Field(description="When it began.")
    action: str = Field(description="AddConsumer (one consumer more, within maxReplicas) or None.")
    message: str = ""


class StreamingJobStatus(StatusModel):
    """Observed state of the consumers and their stream."""

    state: State = "Pending"
    observed_generation: int | None = None
    replicas: int = Field(0, description="Consumers the Deployment has.")
    ready_replicas: int = 0
    desired_replicas: int | None = None
    selector: str | None = Field(None, description="The consumers' label selector (the scale subresource's).")
    strategy: str | None = Field(None, description="The active strategy.")
    strategy_reason: str | None = None
    lag: int | None = Field(None, description="Entries of the stream not yet delivered to the group.")
    partitions: int | None = Field(
        None, description="Kafka: the topic's partitions, the most consumers that can each have one."
    )
    lag_exact: bool | None = Field(None, description="False when the lag is an estimate (see docs).")
    pending: int | None = Field(None, description="Entries delivered and not yet acknowledged.")
    arrival_rate: float | None = Field(None, description="Messages/s added to the stream.")
    processing_rate: float | None = Field(None, description="Messages/s the group processes now.")
    consumer_rate: float | None = Field(None, description="Messages/s one consumer processes while busy.")
    latency_p50_ms: float | None = Field(None, description="End to end, as the consumers report it.")
    latency_p99_ms: float | None = None
    reclaimed: int = Field(0, description="Entries of gone consumers handed to live ones.")
    last_decision: Decision | None = None
    anomalies: list[AnomalyStatus] = Field(default_factory=list, description="The anomalies active now.")
    last_reconcile_time: str | None = Field(None, description="When this status was last written.")
    message: str | None = None
    conditions: list[Condition] = Field(default_factory=list)


class StreamingJob(Model):
    """Consumers of a Redis stream or a Kafka topic, autoscaled by lag and arrival rate."""

    api_version: str = f"{GROUP}/{VERSION}"
    kind: str = KIND
    metadata: dict[str, Any] = Field(default_factory=dict)
    spec: StreamingJobSpec
    status: StreamingJobStatus | None = None

    crd_rules: ClassVar[list[dict[str, str]]] = [
        {
            "rule": f"size(self.metadata.name) <= {MAX_NAME}",
            "message": f"metadata.name must be at most {MAX_NAME} characters: each consumer is named after "
            "its pod, <name>-<replicaset>-<pod>, at most 63",
        },
        {
            "rule": "!has(self.spec.scaling) || !has(self.spec.scaling.minReplicas) "
            "|| !has(self.spec.scaling.maxReplicas) "
            "|| self.spec.scaling.minReplicas <= self.spec.scaling.maxReplicas",
            "message": "spec.scaling.minReplicas must not exceed spec.scaling.maxReplicas",
            "fieldPath": ".spec.scaling.minReplicas",
        },
    ]


INFO = KindInfo(
    kind=KIND,
    plural=PLURAL,
    root=StreamingJob,
    spec=StreamingJobSpec,
    status=StreamingJobStatus,
    short_names=("stj",),
    printer_columns=(
        {"name": "Strategy", "type": "string", "jsonPath": ".status.strategy"},
        {"name": "Replicas", "type": "integer", "jsonPath": ".status.replicas"},
        {"name": "Lag", "type": "integer", "jsonPath": ".status.lag"},
        {"name": "Rate", "type": "number", "jsonPath": ".status.arrivalRate"},
        {"name": "P99", "type": "number", "jsonPath": ".status.latencyP99Ms"},
        {"name": "State", "type": "string", "jsonPath": ".status.state"},
        {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    ),
    terminal_phases=frozenset(),
    owner_label=OWNER_LABEL,
    scale={
        "specReplicasPath": ".spec.replicas",
        "statusReplicasPath": ".status.replicas",
        "labelSelectorPath": ".status.selector",
    },
)
