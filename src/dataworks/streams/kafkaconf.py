"""How every Kafka client of dataworks connects (edge layer): bootstrap servers, plus TLS and
SASL settings from the environment, never from a command line or a URL.

A StreamingJob's consumer pods get these variables from the Secrets its `kafka.tls` and
`kafka.sasl` name (manifests/streamingjobs.py); on a workstation `dataworks consume --kafka`,
`generate -o kafka://` and `bench stream --kafka` read the same ones:

| variable                  | librdkafka setting | |
|---------------------------|--------------------|---|
| KAFKA_SECURITY_PROTOCOL   | security.protocol  | PLAINTEXT (default), SSL, SASL_PLAINTEXT, SASL_SSL |
| KAFKA_SASL_MECHANISM      | sasl.mechanism     | PLAIN, SCRAM-SHA-256, SCRAM-SHA-512 |
| KAFKA_SASL_USERNAME       | sasl.username      | |
| KAFKA_SASL_PASSWORD       | sasl.password      | |
| KAFKA_SSL_CA_PEM          | ssl.ca.pem         | the CA certificate(s) in PEM; the system's CAs otherwise |

The operator reads the same Secrets itself (get, by name) and passes the settings to its
reader directly (`settings(bootstrap, security=...)`), without its own environment.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

ENV = {
    "security.protocol": "KAFKA_SECURITY_PROTOCOL",
    "sasl.mechanism": "KAFKA_SASL_MECHANISM",
    "sasl.username": "KAFKA_SASL_USERNAME",
    "sasl.password": "KAFKA_SASL_PASSWORD",
    "ssl.ca.pem": "KAFKA_SSL_CA_PEM",
}


def from_env(environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The security settings the environment gives (none: plaintext, no authentication)."""
    env = os.environ if environ is None else environ
    return {setting: env[name] for setting, name in ENV.items() if env.get(name)}


def settings(
    bootstrap: str, extra: Mapping[str, Any] | None = None, *, security: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """A client configuration: the servers, the security settings (`security`, or else the
    environment's), then the client's own `extra` settings."""
    own = from_env() if security is None else dict(security)
    return {"bootstrap.servers": bootstrap, **own, **(extra or {})}
