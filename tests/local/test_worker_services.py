"""The worker against real services: PostgreSQL, OpenSSH's sftp, an HTTP server, S3 (moto)."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import duckdb
import pytest

from tests.local import services
from tests.local.conftest import Workspace


@pytest.fixture
def db(pg: services.Postgres, ws: Workspace) -> services.Postgres:
    pg.psql(
        "DROP TABLE IF EXISTS campaigns, orders, target;"
        "CREATE TABLE campaigns (id int PRIMARY KEY, name text, quarter text, year int, budget numeric, "
        "  starts date, note text);"
        "INSERT INTO campaigns SELECT i, 'c' || i, 'Q' || (1 + i % 4), 2024, i * 10.5, "
        "  DATE '2024-01-01' + i, "
        "  CASE WHEN i % 5 = 0 THEN NULL WHEN i % 7 = 0 THEN '' ELSE 'say \"hi\", ok' END "
        "FROM generate_series(1, 200) i;"
        "CREATE TABLE orders (id int, partition_date date, amount int);"
        "INSERT INTO orders SELECT i, DATE '2024-01-14' + (i % 2), i FROM generate_series(1, 10) i;"
    )
    ws.env["DATAWORKS_CONN_CAMPAIGNS_DB"] = pg.uri()
    return pg


def test_fetch_by_query_keeps_types_nulls_and_quotes(db: services.Postgres, ws: Workspace) -> None:
    sql = "SELECT * FROM campaigns WHERE quarter = 'Q1' AND year = 2024"
    ws.ok(
        {
            "name": "f",
            "type": "fetch",
            "config": {"source": "campaigns_db", "query": sql, "table": "campaigns"},
        }
    )
    rows = ws.rows("f", order="id")
    assert len(rows) == 50
    types = duckdb.sql(
        f"DESCRIBE SELECT * FROM read_parquet('{next(ws.step_dir('f').rglob('*.parquet'))}')"
    ).fetchall()
    assert [t[1] for t in types] == ["INTEGER", "VARCHAR", "VARCHAR", "INTEGER", "DOUBLE", "DATE", "VARCHAR"]
    notes = {r[0]: r[6] for r in rows}
    assert notes[20] is None
    assert notes[28] == ""
    assert notes[4] == 'say "hi", ok'


def test_fetch_tables_with_partition_date(db: services.Postgres, ws: Workspace) -> None:
    ws.ok(
        {
            "name": "f",
            "type": "fetch",
            "config": {
                "source": "campaigns_db",
                "tables": ["orders"],
                "partition_date": "2024-01-15",
                "table_prefix": "raw_",
            },
        }
    )
    assert sorted(r[0] for r in ws.rows("f", "raw_orders")) == [1, 3, 5, 7, 9]


def test_load_modes_and_a_failure_mid_load_leaves_the_table_unchanged(
    db: services.Postgres, ws: Workspace
) -> None:
    db.psql("CREATE TABLE target (id int PRIMARY KEY, v text CHECK (v <> 'bad'))")
    ws.env["DATAWORKS_CONN_WAREHOUSE"] = db.uri()
    ws.ok(
        {
            "name": "src",
            "type": "transform",
            "config": {"sql": "SELECT range::INT AS id, 'v' || range AS v FROM range(10000)"},
        }
    )
    load = {
        "type": "load",
        "dependsOn": ["src"],
        "config": {"destination": "postgres", "connection": "warehouse", "table": "target"},
    }
    appended = ws.ok({**load, "name": "append"})
    assert db.psql("SELECT count(*) FROM target") == "10000"
    assert "load: binary COPY of 10000 rows into target" in appended.stderr
    ws.ok({**load, "name": "over", "config": {**load["config"], "mode": "overwrite"}})
    assert db.psql("SELECT count(*) FROM target") == "10000"
    ws.ok(
        {
            "name": "src2",
            "type": "transform",
            "config": {"sql": "SELECT range::INT AS id, 'new' AS v FROM range(9990, 10010)"},
        }
    )
    ws.ok(
        {
            "name": "up",
            "type": "load",
            "dependsOn": ["src2"],
            "config": {**load["config"], "mode": "upsert", "key": ["id"]},
        }
    )
    assert db.psql("SELECT count(*), count(*) FILTER (WHERE v = 'new') FROM target") == "10010|20"
    before = db.psql("SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM target")
    ws.ok(
        {
            "name": "src3",
            "type": "transform",
            "config": {
                "sql": "SELECT range::INT + 20000 AS id, CASE WHEN range = 5000 THEN 'bad' ELSE 'x' END AS v "
                "FROM range(10000)"
            },
        }
    )
    for mode in ("append", "overwrite", "upsert"):
        result = ws.run(
            {
                "name": f"fail-{mode}",
                "type": "load",
                "dependsOn": ["src3"],
                "config": {**load["config"], "mode": mode, "key": ["id"]},
            }
        )
        assert result.code == 1, mode
        assert "rolled back, the table is unchanged" in result.stderr
        assert "target_v_check" in result.stderr
        assert db.psql("SELECT md5(string_agg(id || v, ',' ORDER BY id)) FROM target") == before, mode


def test_load_keeps_every_value_in_binary_and_in_csv(db: services.Postgres, ws: Workspace) -> None:
    """Binary COPY when each column's type is the encoder's; CSV, converted by PostgreSQL, otherwise."""
    ws.env["DATAWORKS_CONN_WAREHOUSE"] = db.uri()
    ws.ok(
        {
            "name": "src",
            "type": "transform",
            "config": {
                "sql": "SELECT * FROM (VALUES "
                "(1, 10000000000::BIGINT, 1.5::DOUBLE, 'a,\"b\"\nc', DATE '2024-02-29', "
                "TIMESTAMP '2024-01-01 12:34:56.789', 12.34::DECIMAL(10,2), true, "
                "TIMESTAMPTZ '2024-01-01 00:00:00+02'),"
                "(2, NULL, 'NaN'::DOUBLE, '', NULL, NULL, NULL, NULL, NULL)) "
                "AS t(id, big, f, s, d, ts, amount, ok, tz)"
            },
        }
    )
    load = {
        "type": "load",
        "dependsOn": ["src"],
        "config": {"destination": "postgres", "connection": "warehouse"},
    }
    columns = "id, big, f, s = '', s IS NULL, replace(s, E'\\n', '|'), d, ts, amount, ok"
    query = f"SELECT {columns}, tz FROM {{}} ORDER BY id"
    want = [
        '1|10000000000|1.5|f|f|a,"b"|c|2024-02-29|2024-01-01 12:34:56.789|12.34|t|2023-12-31 22:00:00+00',
        "2||NaN|t|f||||||",
    ]
    # A table the load creates: every column but the timestamptz matches the encoder, so CSV.
    made = ws.ok({**load, "name": "made", "config": {**load["config"], "table": "made"}})
    assert "load: CSV COPY into made, not binary: column tz is timestamp with time zone" in made.stderr
    assert db.psql(query.format("made")).splitlines() == want
    db.psql(
        "CREATE TABLE exact (id int, big bigint, f float8, s text, d date, ts timestamp, "
        "amount numeric(10,2), ok boolean, tz timestamptz)"
    )
    exact = ws.ok(
        {
            "name": "exact",
            "type": "load",
            "dependsOn": ["src"],
            "config": {**load["config"], "table": "exact"},
        }
    )
    assert "CSV COPY" in exact.stderr  # timestamptz again
    ws.ok(
        {
            "name": "no-tz",
            "type": "transform",
            "dependsOn": ["src"],
            "config": {"sql": "SELECT * EXCLUDE (tz) FROM src"},
        }
    )
    db.psql("ALTER TABLE exact DROP COLUMN tz; TRUNCATE exact")
    binary = ws.ok(
        {
            "name": "bin",
            "type": "load",
            "dependsOn": ["no-tz"],
            "config": {**load["config"], "table": "exact"},
        }
    )
    assert "load: binary COPY of 2 rows into exact" in binary.stderr
    assert db.psql(f"SELECT {columns} FROM exact ORDER BY id").splitlines() == [
        w.rsplit("|", 1)[0] for w in want
    ]
    # An int column fed a BIGINT: not the encoder's type, so CSV, and PostgreSQL converts.
    db.psql("CREATE TABLE wider (id bigint, big numeric)")
    ws.ok({"name": "ids", "type": "transform", "config": {"sql": "SELECT 7::INT AS id, 8::BIGINT AS big"}})
    wider = ws.ok(
        {"name": "w", "type": "load", "dependsOn": ["ids"], "config": {**load["config"], "table": "wider"}}
    )
    assert "not binary: column id is bigint, the input gives int4" in wider.stderr
    assert db.psql("SELECT id, big FROM wider") == "7|8"


def test_load_missing_column_and_key(db: services.Postgres, ws: Workspace) -> None:
    db.psql("DROP TABLE IF EXISTS narrow; CREATE TABLE narrow (id int)")
    ws.env["DATAWORKS_CONN_WAREHOUSE"] = db.uri()
    ws.ok({"name": "src", "type": "transform", "config": {"sql": "SELECT 1 AS id, 2 AS extra"}})
    result = ws.run(
        {
            "name": "l",
            "type": "load",
            "dependsOn": ["src"],
            "config": {"destination": "postgres", "connection": "warehouse", "table": "narrow"},
        }
    )
    assert result.code == 1
    assert "narrow has no column 'extra' (it has id)" in result.stderr


def test_transform_with_engine_postgres_leaves_the_database_alone(
    db: services.Postgres, ws: Workspace
) -> None:
    ws.ok(
        {
            "name": "f",
            "type": "fetch",
            "config": {"source": "campaigns_db", "query": "SELECT id, budget FROM campaigns", "table": "c"},
        }
    )
    sql = "DELETE FROM c WHERE id > 100;\nSELECT count(*) AS n, sum(budget) AS total FROM c"
    ws.ok(
        {
            "name": "t",
            "type": "transform",
            "dependsOn": ["f"],
            "config": {"engine": "postgres", "connection": "campaigns_db", "sql": sql},
        }
    )
    assert ws.rows("t") == [(100, sum(i * 10.5 for i in range(1, 101)))]
    assert db.psql("SELECT to_regclass('c') IS NULL") == "t"
    bad = ws.run(
        {
            "name": "t2",
            "type": "transform",
            "dependsOn": ["f"],
            "config": {
                "engine": "postgres",
                "connection": "campaigns_db",
                "sql": "SELECT id\nFROM c\nWHERE nope > 1",
            },
        }
    )
    assert bad.code == 1
    assert 'column "nope" does not exist at line 3: WHERE nope > 1' in bad.stderr


def test_wrong_credentials_and_unreachable_host(db: services.Postgres, ws: Workspace) -> None:
    ws.env["DATAWORKS_CONN_CAMPAIGNS_DB"] = db.uri(password="wrong")
    result = ws.run({"name": "f", "type": "fetch", "config": {"source": "campaigns_db", "query": "SELECT 1"}})
    assert result.code == 1
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{db.port} (connection 'campaigns_db')" in result.stderr
    assert "password authentication failed" in result.stderr
    closed = services.free_port()
    ws.env["DATAWORKS_CONN_CAMPAIGNS_DB"] = f"postgresql://u:p@127.0.0.1:{closed}/x"
    result = ws.run({"name": "f", "type": "fetch", "config": {"source": "campaigns_db", "query": "SELECT 1"}})
    assert result.code == 1
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{closed}" in result.stderr
    assert not ws.committed("f")


def test_fetch_over_http(ws: Workspace, tmp_path: Path) -> None:
    served = tmp_path / "www"
    served.mkdir()
    (served / "events.csv").write_text("id,kind\n1,click\n2,view\n")
    with services.http_files(served) as base:
        ws.ok({"name": "h", "type": "fetch", "config": {"url": f"{base}/events.csv"}})
        missing = ws.run({"name": "h2", "type": "fetch", "config": {"url": f"{base}/nope.csv"}})
    assert ws.rows("h", order="id") == [(1, "click"), (2, "view")]
    assert missing.code == 1
    assert "127.0.0.1" in missing.stderr


def test_fetch_over_sftp_with_key_and_password(sftp_server: services.Sftp, ws: Workspace) -> None:
    (sftp_server.home / "exports").mkdir(exist_ok=True)
    for day in (14, 15):
        (sftp_server.home / "exports" / f"orders-{day}.csv").write_text(f"id,day\n1,{day}\n2,{day}\n")
    # A wrapper in front of OpenSSH's client records that the key-based fetch went through it.
    wrapper = ws.root / "bin" / "sftp"
    wrapper.parent.mkdir()
    wrapper.write_text(
        f'#!/bin/sh\necho used >> {ws.root / "openssh-used"}\nexec {shutil.which("sftp")} "$@"\n'
    )
    wrapper.chmod(0o755)
    ws.env["PATH"] = f"{wrapper.parent}:{os.environ['PATH']}"
    ws.env["DATAWORKS_CONN_PARTNER_KEY"] = sftp_server.uri()
    ws.env["DATAWORKS_CONN_PARTNER_PW"] = sftp_server.uri(password=True)
    ws.env["DATAWORKS_CONN_PARTNER_BAD"] = sftp_server.uri(password=True, wrong=True)
    ws.ok({"name": "k", "type": "fetch", "config": {"source": "partner_key", "glob": "exports/*.csv"}})
    assert len(ws.rows("k")) == 4
    assert (ws.root / "openssh-used").read_text() == "used\n"  # key auth: OpenSSH's client moved the data
    ws.ok({"name": "p", "type": "fetch", "config": {"source": "partner_pw", "path": "exports/orders-15.csv"}})
    assert ws.rows("p", order="id") == [(1, 15), (2, 15)]
    assert (ws.root / "openssh-used").read_text() == "used\n"  # password auth: paramiko, not the client
    missing = ws.run(
        {"name": "m", "type": "fetch", "config": {"source": "partner_key", "path": "exports/nope.csv"}}
    )
    assert missing.code == 1
    assert f"cannot download from 127.0.0.1:{sftp_server.port} (connection 'partner_key')" in missing.stderr
    assert "nope.csv" in missing.stderr
    bad = ws.run({"name": "b", "type": "fetch", "config": {"source": "partner_bad", "path": "exports/"}})
    assert bad.code == 1
    assert f"127.0.0.1:{sftp_server.port}" in bad.stderr
    assert "Authentication" in bad.stderr


def test_sftp_host_keys_are_pinned_or_reported(
    sftp_server: services.Sftp, ws: Workspace, tmp_path: Path
) -> None:
    (sftp_server.home / "pin.csv").write_text("id\n1\n")
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(tmp_path / "other")], check=True)
    other = " ".join((tmp_path / "other.pub").read_text().split()[:2])
    fetch = {"type": "fetch", "config": {"path": "pin.csv"}}
    # key auth goes through OpenSSH's client, password auth through paramiko: both must check
    for auth, password in (("key", False), ("pw", True)):
        ws.env[f"DATAWORKS_CONN_{auth.upper()}_OPEN"] = sftp_server.uri(password=password)
        ws.env[f"DATAWORKS_CONN_{auth.upper()}_PINNED"] = sftp_server.uri(
            password=password, host_key=sftp_server.host_key
        )
        ws.env[f"DATAWORKS_CONN_{auth.upper()}_OTHER"] = sftp_server.uri(password=password, host_key=other)
        opened = ws.run(
            {**fetch, "name": f"{auth}-open", "config": {"path": "pin.csv", "source": f"{auth}_open"}}
        )
        assert opened.code == 0, opened.stderr
        assert f"warning: the host key of 127.0.0.1:{sftp_server.port} was not verified" in opened.stderr
        assert f"host_key='{sftp_server.host_key}'" in opened.stderr  # what to pin, ready to paste
        pinned = ws.run(
            {**fetch, "name": f"{auth}-pinned", "config": {"path": "pin.csv", "source": f"{auth}_pinned"}}
        )
        assert pinned.code == 0, pinned.stderr
        assert "not verified" not in pinned.stderr
        assert ws.rows(f"{auth}-pinned") == [(1,)]
        refused = ws.run(
            {**fetch, "name": f"{auth}-other", "config": {"path": "pin.csv", "source": f"{auth}_other"}}
        )
        assert refused.code == 1
        assert f"127.0.0.1:{sftp_server.port}" in refused.stderr
        assert f"host key mismatch for 127.0.0.1:{sftp_server.port}: it presented " in refused.stderr
        assert "SHA256:" in refused.stderr.split("it presented ")[1].split(",")[0]
        assert not ws.committed(f"{auth}-other")
    ws.env["DATAWORKS_CONN_GARBLED"] = sftp_server.uri(password=True, host_key="not-a-key")
    garbled = ws.run({**fetch, "name": "garbled", "config": {"path": "pin.csv", "source": "garbled"}})
    assert garbled.code == 1
    assert "host_key 'not-a-key' is not a public key" in garbled.stderr


def test_fetch_and_load_on_s3(s3_endpoint: str, ws: Workspace) -> None:
    import s3fs

    fs = s3fs.S3FileSystem(key="k", secret="s", client_kwargs={"endpoint_url": s3_endpoint})
    fs.mkdir("lake")
    fs.pipe("lake/events/year=2024/a.jsonl", b'{"id": 1}\n{"id": 2}\n')
    fs.pipe("lake/events/year=2024/b.jsonl", b'{"id": 3}\n')
    ws.env["DATAWORKS_CONN_EVENTS_S3"] = f"s3://lake?endpoint_url={s3_endpoint}&key=k&secret=s"
    ws.ok({"name": "s", "type": "fetch", "config": {"source": "events_s3", "prefix": "events/year=2024/"}})
    assert sorted(r[0] for r in ws.rows("s")) == [1, 2, 3]
    ws.ok(
        {
            "name": "out",
            "type": "load",
            "dependsOn": ["s"],
            "config": {"destination": "file", "connection": "events_s3", "path": "exports/ids.parquet"},
        }
    )
    local = ws.root / "ids.parquet"
    fs.get("lake/exports/ids.parquet", str(local))
    assert sorted(r[0] for r in duckdb.sql(f"SELECT id FROM read_parquet('{local}')").fetchall()) == [1, 2, 3]
    assert json.dumps(fs.ls("lake/exports")).count("ids.parquet") == 1


def test_an_object_store_as_the_artifact_store(s3_endpoint: str, ws: Workspace) -> None:
    """As on a cluster: outputs go to s3:// with the credentials in the environment (the operator's
    artifactStoreSecret), parts first and each worker's manifest last; readers find them there."""
    import s3fs

    fs = s3fs.S3FileSystem(key="k", secret="s", client_kwargs={"endpoint_url": s3_endpoint})
    fs.mkdir("artifacts")
    ws.env.update(
        DATAWORKS_STORE="s3://artifacts/dataworks",
        AWS_ACCESS_KEY_ID="k",
        AWS_SECRET_ACCESS_KEY="s",
        AWS_ENDPOINT_URL=s3_endpoint,
        AWS_DEFAULT_REGION="us-east-1",
    )
    ws.ok({"name": "nums", "type": "transform", "config": {"sql": "SELECT range AS n FROM range(1000)"}})
    fan = {
        "name": "split",
        "type": "fan-out",
        "dependsOn": ["nums"],
        "parallelism": 2,
        "config": {"sql": "SELECT n, n * 2 AS twice FROM nums"},
    }
    for index in (0, 1):
        ws.ok(fan, index=index, total=2)
    ws.ok(
        {
            "name": "total",
            "type": "transform",
            "dependsOn": ["split"],
            "config": {"sql": "SELECT count(*) AS c, sum(twice) AS s FROM split"},
        }
    )
    step = "artifacts/dataworks/test/p/r1"
    assert sorted(fs.ls(f"{step}/split/_manifest")) == [
        f"{step}/split/_manifest/00000.json",
        f"{step}/split/_manifest/00001.json",
    ]
    manifest = json.loads(fs.cat(f"{step}/total/_manifest/00000.json"))
    (part,) = manifest["tables"]["total"]["files"]
    local = ws.root / "total.parquet"
    fs.get(f"{step}/total/{part}", str(local))
    assert duckdb.sql(f"SELECT c, s FROM read_parquet('{local}')").fetchall() == [(1000, 999000)]
    assert not (ws.root / "store").exists()  # nothing fell back to local disk


def test_a_host_that_never_answers_times_out_with_its_name(ws: Workspace) -> None:
    silent = socket.socket()  # accepts the TCP connection (backlog) and never says a word
    silent.bind(("127.0.0.1", 0))
    silent.listen(1)
    port = silent.getsockname()[1]
    try:
        ws.env["DATAWORKS_CONN_SLOW"] = f"postgresql://u:p@127.0.0.1:{port}/db?connect_timeout=2"
        started = time.monotonic()
        result = ws.run({"name": "f", "type": "fetch", "config": {"source": "slow", "query": "SELECT 1"}})
        took = time.monotonic() - started
    finally:
        silent.close()
    assert result.code == 1
    assert f"cannot connect to PostgreSQL at 127.0.0.1:{port} (connection 'slow')" in result.stderr
    assert "timeout" in result.stderr
    assert 2 <= took < 10
    assert not ws.committed("f")
