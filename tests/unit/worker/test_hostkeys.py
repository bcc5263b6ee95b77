"""Pinned sftp host keys: the forms a user may paste, and the fingerprint ssh-keygen shows."""

from __future__ import annotations

import base64
import hashlib

import pytest

from dataworks.worker import connections, hostkeys
from dataworks.worker.errors import StepFailed

BLOB = base64.b64encode(b"\x00\x00\x00\x0bssh-ed25519" + bytes(range(36))).decode()


@pytest.mark.parametrize(
    "text",
    [
        f"ssh-ed25519 {BLOB}",  # the server's .pub without its comment
        f"ssh-ed25519 {BLOB} root@sftp-1",  # with it
        f"[sftp.example.com]:2222 ssh-ed25519 {BLOB}",  # a line of ssh-keyscan or known_hosts
    ],
)
def test_each_pasted_form_gives_the_key(text: str) -> None:
    assert hostkeys.parse(text, "partner") == ("ssh-ed25519", BLOB)


def test_a_value_that_is_no_key_says_what_to_give() -> None:
    with pytest.raises(StepFailed, match=r"connection 'partner': host_key 'SHA256:abc' is not a public key"):
        hostkeys.parse("SHA256:abc", "partner")
    with pytest.raises(StepFailed, match="is not base64"):
        hostkeys.parse("ssh-ed25519 not*base64", "partner")


def test_fingerprint_is_ssh_keygens() -> None:
    digest = hashlib.sha256(base64.b64decode(BLOB)).digest()
    assert hostkeys.fingerprint(BLOB) == "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def test_host_key_in_a_uri_keeps_its_plus_signs() -> None:
    blob = BLOB.replace("A", "+", 1)
    uri = f"sftp://u@h:22/base?key_file=/k&host_key=ssh-ed25519%20{blob}"
    assert connections.Connection("partner", uri).host_key == f"ssh-ed25519 {blob}"
    extra = connections.Connection("partner", "sftp://u@h/base", {"host_key": f"ssh-ed25519 {BLOB}"})
    assert extra.host_key == f"ssh-ed25519 {BLOB}"


def test_a_connection_variable_is_found_whatever_its_case() -> None:
    env = {"DATAWORKS_CONN_partner_db": "sqlite:///x.db"}
    assert connections.known_names(env) == ["partner_db"]
    assert connections.resolve("partner_db", "s", env).uri == "sqlite:///x.db"  # as the known list shows it
    with pytest.raises(StepFailed, match=r"unknown connection 'other' \(known: partner_db\)"):
        connections.resolve("other", "s", env)
