"""Real services the local tests start themselves: PostgreSQL, OpenSSH's sftp, HTTP, S3 (moto),
Redis and Kafka.

Each is a real server on a loopback port, started from the Debian packages
that `.ci/run` installs (PostgreSQL, openssh-server, redis-server), from the test extras
(moto's server mode, the S3-compatible server that runs here), or from Apache Kafka's jars
on Maven Central (`make kafka`, run on the JDK). Nothing is mocked.
"""

from __future__ import annotations

import contextlib
import functools
import glob
import http.server
import os
import pwd
import shutil
import subprocess
import tempfile
import threading
import time
import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.builders.net import free_port, wait_port

__all__ = ["free_port", "wait_port"]


def _as_user(user: str | None) -> list[str]:
    return ["runuser", "-u", user, "--"] if user else []


@dataclass(frozen=True)
class Postgres:
    port: int
    user: str
    password: str

    def uri(self, db: str = "dataworks", *, password: str | None = None) -> str:
        return f"postgresql://{self.user}:{password or self.password}@127.0.0.1:{self.port}/{db}"

    def psql(self, sql: str, db: str = "dataworks") -> str:
        out = subprocess.run(
            ["psql", self.uri(db), "-v", "ON_ERROR_STOP=1", "-At", "-c", sql],
            capture_output=True,
            text=True,
            check=True,
        )
        return out.stdout.strip()


@contextlib.contextmanager
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server (Debian's package) with password authentication on loopback."""
    base = Path(tempfile.mkdtemp(prefix="dataworks-pg-"))  # not under pytest's 0700 root-only tmp
    base.chmod(0o755)
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL is not installed: apt-get install postgresql (.ci/run does)")
    bindir = Path(found[-1]).parent
    user = "postgres" if os.geteuid() == 0 else None  # initdb refuses to run as root
    data, sock = base / "pgdata", base / "pgsock"
    for d in (data, sock):
        d.mkdir(parents=True)
        if user:
            shutil.chown(d, user)
    pwfile = base / "pwfile"
    pwfile.write_text("secret\n")
    if user:
        shutil.chown(pwfile, user)
    subprocess.run(
        [
            *_as_user(user),
            str(bindir / "initdb"),
            "-D",
            str(data),
            "-U",
            "dataworks",
            "--pwfile",
            str(pwfile),
            "-A",
            "scram-sha-256",
            "--no-sync",
            "-E",
            "UTF8",
            "--locale",
            "C",
        ],
        check=True,
        capture_output=True,
    )
    port = free_port()
    log = (base / "postgres.log").open("wb")
    proc = subprocess.Popen(
        [
            *_as_user(user),
            str(bindir / "postgres"),
            "-D",
            str(data),
            "-p",
            str(port),
            "-h",
            "127.0.0.1",
            "-k",
            str(sock),
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_port(port)
        pg = Postgres(port, "dataworks", "secret")
        for _ in range(50):
            try:
                pg.psql("SELECT 1", db="postgres")
                break
            except subprocess.CalledProcessError:
                time.sleep(0.1)
        pg.psql("CREATE DATABASE dataworks", db="postgres")
        yield pg
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
        shutil.rmtree(base, ignore_errors=True)


@dataclass(frozen=True)
class Sftp:
    port: int
    user: str
    password: str
    key_file: Path
    home: Path
    host_key: str  # the server's public key, as `ssh-keyscan` prints it (without the host)

    def uri(self, *, password: bool = False, wrong: bool = False, host_key: str | None = None) -> str:
        secret = f":{'wrong' if wrong else self.password}" if password else ""
        params = [] if password else [f"key_file={self.key_file}"]
        if host_key is not None:
            params.append("host_key=" + urllib.parse.quote(host_key, safe=""))
        query = "?" + "&".join(params) if params else ""
        return f"sftp://{self.user}{secret}@127.0.0.1:{self.port}{self.home}{query}"


SFTP_USER = "dwsftp"


def _ensure_user(name: str, password: str) -> Path:
    """A local account for sshd to log in to (tests run as root in CI, which may create it)."""
    try:
        home = Path(pwd.getpwnam(name).pw_dir)
    except KeyError:
        if os.geteuid() != 0:
            raise RuntimeError(
                f"the sftp tests need a user {name!r}; run them as root once to create it"
            ) from None
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/sh", name], check=True)
        home = Path(pwd.getpwnam(name).pw_dir)
    if os.geteuid() == 0:
        subprocess.run(["chpasswd"], input=f"{name}:{password}", text=True, check=True)
    return home


@contextlib.contextmanager
def sftp(base: Path) -> Iterator[Sftp]:
    """OpenSSH's sshd with its sftp subsystem on loopback; key and password authentication."""
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists():
        raise RuntimeError("OpenSSH's server is not installed: apt-get install openssh-server (.ci/run does)")
    password = "sftp-secret"
    home = _ensure_user(SFTP_USER, password)
    data = home / "data"
    data.mkdir(exist_ok=True)
    shutil.chown(data, SFTP_USER)
    ssh = home / ".ssh"
    ssh.mkdir(mode=0o700, exist_ok=True)
    key = base / "client_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
    (ssh / "authorized_keys").write_text(Path(f"{key}.pub").read_text())
    for p in (ssh, ssh / "authorized_keys"):
        shutil.chown(p, SFTP_USER)
    host_key = base / "host_key"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_key)], check=True)
    port = free_port()
    config = base / "sshd_config"
    config.write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {host_key}\nPidFile {base / 'sshd.pid'}\n"
        "PasswordAuthentication yes\nKbdInteractiveAuthentication no\nUsePAM no\n"
        f"AllowUsers {SFTP_USER}\nSubsystem sftp internal-sftp\nStrictModes no\nLogLevel ERROR\n"
    )
    Path("/run/sshd").mkdir(exist_ok=True)
    with (base / "sshd.log").open("wb") as log:
        proc = subprocess.Popen([sshd, "-D", "-e", "-f", str(config)], stderr=log)
        try:
            wait_port(port)
            public = " ".join(Path(f"{host_key}.pub").read_text().split()[:2])
            yield Sftp(port, SFTP_USER, password, key, data, public)
        finally:
            proc.terminate()
            proc.wait(timeout=10)


@contextlib.contextmanager
def http_files(root: Path) -> Iterator[str]:
    """Python's HTTP server over a folder, on loopback: the base URL."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


@contextlib.contextmanager
def s3() -> Iterator[str]:
    """moto's S3-compatible server on loopback: its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


@dataclass(frozen=True)
class Redis:
    port: int
    dir: Path

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"


@contextlib.contextmanager
def redis(base: Path, *, appendfsync: str | None = None, password: str | None = None) -> Iterator[Redis]:
    """Debian's redis-server on a loopback port, with AOF (`appendfsync`) or no persistence, and
    a password when one is given."""
    port = free_port()
    persistence = (
        ["--appendonly", "yes", "--appendfsync", appendfsync] if appendfsync else ["--appendonly", "no"]
    )
    if password:
        persistence += ["--requirepass", password]
    cmd = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(base)]
    proc = subprocess.Popen([*cmd, *persistence], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    try:
        wait_port(port)
        yield Redis(port, base)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


KAFKA_LIB = Path(__file__).resolve().parents[2] / "test" / "kafka" / "lib"


def with_kafka_tools(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with Kafka's tools first on PATH, as a distribution's
    bin/ would be: kafka-producer-perf-test.sh, the Kafka ceiling of `bench stream`."""
    env = dict(os.environ if env is None else env)
    env["PATH"] = f"{KAFKA_LIB.parent / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    return env


KAFKA_CLUSTER_ID = "ZGF0YXdvcmtzLXRlc3RzAA"  # any 22-character base64url id; one per data dir


KAFKA_USER, KAFKA_USER_PASSWORD = "alice", "alice-s3cret"  # the SASL user (PLAIN and SCRAM-SHA-256)


@dataclass(frozen=True)
class Kafka:
    port: int
    dir: Path
    secure_port: int = 0  # SASL_SSL (PLAIN, SCRAM-SHA-256), the certificate signed by `ca`

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def secure_bootstrap(self) -> str:
        return f"127.0.0.1:{self.secure_port}"

    @property
    def ca(self) -> str:
        """The PEM of the CA that signed the broker's certificate."""
        return (self.dir / "tls" / "ca.crt").read_text()

    def create_topic(self, name: str, partitions: int) -> None:
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for future in admin.create_topics(
            [NewTopic(name, num_partitions=partitions, replication_factor=1)]
        ).values():
            future.result(timeout=30)
        # Created is not yet served: wait until every partition has a leader that answers.
        from confluent_kafka import TopicPartition
        from confluent_kafka.admin import OffsetSpec  # type: ignore[attr-defined]  # not in __all__

        deadline = time.monotonic() + 30
        tps = {TopicPartition(name, p): OffsetSpec.latest() for p in range(partitions)}
        while True:
            try:
                for f in admin.list_offsets(tps, request_timeout=5).values():
                    f.result(timeout=10)
                return
            except Exception:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)


@contextlib.contextmanager
def kafka(base: Path, *, session_timeout_ms: int = 6000) -> Iterator[Kafka]:
    """An Apache Kafka 4 broker in KRaft mode (one process, broker and controller), from the jars
    `make kafka` fetched from Maven Central, on the machine's JDK, on loopback ports. The group
    session timeout is short (6 s against the default 45 s) so a killed consumer's partitions
    move within a test's patience; everything else is the broker's default."""
    if not any(KAFKA_LIB.glob("kafka_2.13-*.jar")):
        raise RuntimeError(f"no Kafka jars in {KAFKA_LIB}: run `make kafka` (Maven and a JDK 17+)")
    port, secure, controller = free_port(), free_port(), free_port()
    data = base / "data"
    props = base / "server.properties"
    keystore = _certificates(base / "tls")
    jaas = f'user_{KAFKA_USER}="{KAFKA_USER_PASSWORD}";'
    props.write_text(
        "\n".join(
            [
                "process.roles=broker,controller",
                "node.id=1",
                f"controller.quorum.voters=1@127.0.0.1:{controller}",
                f"listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secure},"
                f"CONTROLLER://127.0.0.1:{controller}",
                f"advertised.listeners=PLAINTEXT://127.0.0.1:{port},SASL_SSL://127.0.0.1:{secure}",
                "controller.listener.names=CONTROLLER",
                "inter.broker.listener.name=PLAINTEXT",
                "listener.security.protocol.map=PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT",
                "sasl.enabled.mechanisms=PLAIN,SCRAM-SHA-256",
                "listener.name.sasl_ssl.plain.sasl.jaas.config="
                f"org.apache.kafka.common.security.plain.PlainLoginModule required {jaas}",
                "listener.name.sasl_ssl.scram-sha-256.sasl.jaas.config="
                "org.apache.kafka.common.security.scram.ScramLoginModule required;",
                "listener.name.sasl_ssl.ssl.keystore.type=PEM",
                f"listener.name.sasl_ssl.ssl.keystore.location={keystore}",
                f"log.dirs={data}",
                "num.partitions=1",
                "offsets.topic.replication.factor=1",
                "offsets.topic.num.partitions=3",
                "transaction.state.log.replication.factor=1",
                "transaction.state.log.min.isr=1",
                "group.initial.rebalance.delay.ms=0",
                f"group.consumer.min.session.timeout.ms={min(session_timeout_ms, 45000)}",
                f"group.consumer.session.timeout.ms={session_timeout_ms}",
                "group.consumer.min.heartbeat.interval.ms=500",
                "group.consumer.heartbeat.interval.ms=1000",
                "",
            ]
        )
    )
    java = ["java", "-Xmx512m", "-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-cp", f"{KAFKA_LIB}/*"]
    subprocess.run(
        [
            *java,
            "kafka.tools.StorageTool",
            "format",
            "-t",
            KAFKA_CLUSTER_ID,
            "-c",
            str(props),
            "--add-scram",
            f"SCRAM-SHA-256=[name={KAFKA_USER},password={KAFKA_USER_PASSWORD}]",
        ],
        check=True,
        capture_output=True,
    )
    log = (base / "broker.log").open("wb")
    proc = subprocess.Popen([*java, "kafka.Kafka", str(props)], stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_port(port, timeout=60)
        _wait_kafka_ready(f"127.0.0.1:{port}", proc)
        yield Kafka(port, base, secure)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def _certificates(where: Path) -> Path:
    """A CA and a broker certificate for 127.0.0.1 signed by it, made with openssl; the PEM
    keystore Kafka reads (the key, then the certificate)."""
    where.mkdir(parents=True, exist_ok=True)

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=where)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
            "-days", "2", "-subj", "/CN=dataworks tests CA")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "broker.key", "-out", "broker.csr",
            "-subj", "/CN=127.0.0.1")  # fmt: skip
    (where / "san.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    openssl("x509", "-req", "-in", "broker.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-out", "broker.crt", "-days", "2", "-extfile", "san.ext")  # fmt: skip
    openssl("pkcs8", "-topk8", "-nocrypt", "-in", "broker.key", "-out", "broker.p8")
    keystore = where / "broker.pem"
    keystore.write_text((where / "broker.p8").read_text() + (where / "broker.crt").read_text())
    return keystore


def _wait_kafka_ready(bootstrap: str, proc: subprocess.Popen[bytes], timeout: float = 60) -> None:
    """Until the broker answers a metadata request (its port opens before it serves)."""
    from confluent_kafka.admin import AdminClient

    admin = AdminClient({"bootstrap.servers": bootstrap})
    deadline = time.monotonic() + timeout
    while True:
        if proc.poll() is not None:
            raise RuntimeError(f"the Kafka broker exited with {proc.returncode}; see its broker.log")
        try:
            if admin.list_topics(timeout=2).brokers:
                return
        except Exception:
            if time.monotonic() > deadline:
                raise
        time.sleep(0.2)
