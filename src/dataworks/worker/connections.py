"""Named connections (edge layer): `campaigns_db` -> a URI with its credentials.

A connection resolves, in order, from the environment variable
`DATAWORKS_CONN_<NAME>` (Airflow's convention: upper case, `-` and `.` become
`_`), then from `DATAWORKS_CONNECTIONS`, which names either a YAML file of
`name: uri` (or `name: {uri: ..., password: ..., private_key: ...}`) or a
directory with one file per connection, as a mounted Secret gives. On a
cluster the operator mounts the pipeline's connections Secret there, so no
credential is ever a literal value in a Job spec.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from dataworks.core.pipelines.steps import connection_keys
from dataworks.worker.errors import StepFailed

SQL_SCHEMES = {"postgresql", "postgres", "sqlite", "duckdb"}
FILE_SCHEMES = {"file", "http", "https", "sftp", "s3"}


@dataclass(frozen=True)
class Connection:
    """A resolved connection: its scheme, URI and the extras a file system needs."""

    name: str
    uri: str
    extras: dict[str, str] = field(default_factory=dict)

    @property
    def scheme(self) -> str:
        scheme = urlsplit(self.uri).scheme or "file"
        return "postgresql" if scheme == "postgres" else scheme

    @property
    def host(self) -> str:
        parts = urlsplit(self.uri)
        return f"{parts.hostname}:{parts.port}" if parts.port else str(parts.hostname or "")

    @property
    def path(self) -> str:
        """The local path of a file, sqlite or duckdb URI (`sqlite:///abs/path`)."""
        return unquote(urlsplit(self.uri).path)

    @property
    def host_key(self) -> str | None:
        """An sftp server's pinned public key: the `host_key` extra, or the query's `host_key`
        (percent-decoded only, so a `+` of base64 stays a `+`)."""
        if self.extras.get("host_key"):
            return self.extras["host_key"]
        for pair in urlsplit(self.uri).query.split("&"):
            key, _, value = pair.partition("=")
            if key == "host_key" and value:
                return unquote(value)
        return None

    def storage_options(self) -> dict[str, Any]:
        """fsspec options for a file-like connection (credentials included)."""
        parts = urlsplit(self.uri)
        query = dict(parse_qsl(parts.query))
        options: dict[str, Any] = {}
        if self.scheme == "sftp":
            options = {
                "host": parts.hostname,
                "port": parts.port or 22,
                "username": unquote(parts.username or ""),
            }
            if parts.password:
                options["password"] = unquote(parts.password)
            key_file = self.extras.get("key_file") or query.get("key_file")
            if key_file:
                options["key_filename"] = key_file
            options.update(look_for_keys=False, allow_agent=False, timeout=float(query.get("timeout", 10)))
            from dataworks.worker import hostkeys  # paramiko: only sftp connections pay its import

            options["host_key_policy"] = hostkeys.policy(self.host_key, self.name, self.host)
        elif self.scheme == "s3":
            client: dict[str, Any] = {}
            if "endpoint_url" in query:
                client["endpoint_url"] = query["endpoint_url"]
            if "region" in query:
                client["region_name"] = query["region"]
            options = {"client_kwargs": client} if client else {}
            key = self.extras.get("key") or query.get("key")
            secret = self.extras.get("secret") or query.get("secret")
            if key and secret:
                options.update(key=key, secret=secret)
        return options

    def base_url(self) -> str:
        """The URL without credentials or query: where relative paths start."""
        parts = urlsplit(self.uri)
        if self.scheme == "s3":
            return f"s3://{parts.netloc}{parts.path}"
        if self.scheme in {"http", "https"}:
            return f"{parts.scheme}://{parts.hostname}{f':{parts.port}' if parts.port else ''}{parts.path}"
        return parts.path or "/"


def env_name(name: str) -> str:
    return connection_keys(name)[1]


def _from_mapping(name: str, value: Any, where: str) -> Connection:
    if isinstance(value, str):
        return Connection(name, value.strip())
    if isinstance(value, dict) and isinstance(value.get("uri"), str):
        extras = {str(k): str(v) for k, v in value.items() if k != "uri"}
        return Connection(name, value["uri"], extras)
    raise StepFailed(f"connection {name!r} in {where} must be a URI or an object with `uri`")


def _load_file(path: Path) -> dict[str, Any]:
    import yaml  # only a connections file needs it: a worker starts faster without

    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as e:
        raise StepFailed(f"cannot read the connections file {path}: {e}") from e
    if not isinstance(data, dict):
        raise StepFailed(f"the connections file {path} must map names to URIs")
    return data


def known_names(environ: dict[str, str]) -> list[str]:
    names = [k.removeprefix("DATAWORKS_CONN_").lower() for k in environ if k.startswith("DATAWORKS_CONN_")]
    source = environ.get("DATAWORKS_CONNECTIONS")
    if source and Path(source).is_dir():
        names += [p.name for p in Path(source).iterdir() if not p.name.startswith(".")]
    elif source and Path(source).is_file():
        names += [str(k) for k in _load_file(Path(source))]
    return sorted(set(names))


def resolve(name: str, step: str, environ: dict[str, str] | None = None) -> Connection:
    """The connection called `name`, or a StepFailed naming the step and the fix."""
    env = dict(os.environ if environ is None else environ)
    wanted = env_name(name)
    # Any case of the variable's name, as known_names lists them.
    spellings = [wanted] + [k for k in env if k != wanted and k.upper() == wanted]
    for var in spellings:
        if env.get(var):
            return Connection(name, env[var].strip())
    source = env.get("DATAWORKS_CONNECTIONS")
    if source:
        path = Path(source)
        if path.is_dir():
            for candidate in (name, env_name(name)):
                if (path / candidate).is_file():
                    return _from_mapping(name, (path / candidate).read_text(), str(path))
        elif path.is_file():
            data = _load_file(path)
            if name in data:
                return _from_mapping(name, data[name], str(path))
    known = known_names(env)
    hint = f" (known: {', '.join(known)})" if known else ""
    raise StepFailed(
        f"step {step!r}: unknown connection {name!r}{hint}; set {env_name(name)} to its URI "
        "or add it to the DATAWORKS_CONNECTIONS file or Secret"
    )
