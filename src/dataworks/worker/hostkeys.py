"""SSH host keys of sftp connections (edge layer): pinned, or accepted with a warning.

A connection pins its server with `host_key`: the key as `ssh-keyscan` prints it
or as the server's `.pub` file holds it (`ssh-ed25519 AAAAC3...`). A pinned
connection refuses any other key, through paramiko and through OpenSSH's
client alike. Without a pin the key is accepted, since a pod starts with no
known hosts, and the step's log says which key was accepted and how to pin it.
"""

from __future__ import annotations

import base64
import hashlib
import re
import sys
from pathlib import Path

import paramiko

from dataworks.worker.errors import StepFailed


def parse(text: str, connection: str) -> tuple[str, str]:
    """(key type, base64 blob) of a pinned key; a StepFailed that shows the form otherwise."""
    fields = text.split()
    if len(fields) >= 3 and not fields[0].startswith(("ssh-", "ecdsa-", "sk-")):
        fields = fields[1:]  # an ssh-keyscan / known_hosts line starts with the host
    if len(fields) < 2:
        raise StepFailed(
            f"connection {connection!r}: host_key {text!r} is not a public key; "
            "give it as `ssh-keyscan HOST` prints it, such as 'ssh-ed25519 AAAAC3Nz...'"
        )
    try:
        base64.b64decode(fields[1], validate=True)
    except ValueError as e:
        raise StepFailed(f"connection {connection!r}: host_key: {fields[1][:20]}... is not base64") from e
    return fields[0], fields[1]


def fingerprint(blob: str) -> str:
    """The SHA256 fingerprint ssh-keygen -l shows."""
    digest = hashlib.sha256(base64.b64decode(blob)).digest()
    return "SHA256:" + base64.b64encode(digest).decode().rstrip("=")


def unverified(where: str, key_type: str, blob: str) -> None:
    print(
        f"warning: the host key of {where} was not verified: {key_type} {fingerprint(blob)}; "
        f"pin it by adding host_key='{key_type} {blob}' to the connection",
        file=sys.stderr,
        flush=True,
    )


class Check(paramiko.MissingHostKeyPolicy):
    """paramiko's side: the presented key must be the pinned one, if there is one."""

    def __init__(self, pinned: tuple[str, str] | None, where: str) -> None:
        self.pinned, self.where = pinned, where

    def missing_host_key(self, client: paramiko.SSHClient, hostname: str, key: paramiko.PKey) -> None:
        presented = (key.get_name(), key.get_base64())
        if self.pinned is None:
            unverified(self.where, *presented)
        elif presented != self.pinned:
            raise paramiko.SSHException(mismatch(self.where, presented, self.pinned))


def mismatch(where: str, presented: tuple[str, str], pinned: tuple[str, str]) -> str:
    return (
        f"host key mismatch for {where}: it presented {presented[0]} {fingerprint(presented[1])}, "
        f"the connection pins {pinned[0]} {fingerprint(pinned[1])}; if the server's key really "
        "changed, update host_key"
    )


def openssh_refusal(stderr: str, where: str, pinned: tuple[str, str]) -> str | None:
    """The mismatch message when OpenSSH's client refused the server's key, else None."""
    if "Host key verification failed" not in stderr:
        return None
    seen = re.search(r"(SHA256:[A-Za-z0-9+/]+)", stderr)
    presented = f"it presented {seen.group(1)}, " if seen else ""
    return (
        f"host key mismatch for {where}: {presented}the connection pins {pinned[0]} "
        f"{fingerprint(pinned[1])}; if the server's key really changed, update host_key"
    )


def openssh_options(pinned: tuple[str, str] | None, host: str, port: int, scratch: Path) -> list[str]:
    """`-o` options for OpenSSH's client: a known_hosts with the pin and strict checking, or
    accept-new into a scratch file (read back by `learned` to warn)."""
    known = scratch / "known_hosts"
    if pinned is not None:
        name = host if port == 22 else f"[{host}]:{port}"
        known.write_text(f"{name} {pinned[0]} {pinned[1]}\n")
    checking = "yes" if pinned is not None else "accept-new"
    return ["-o", f"StrictHostKeyChecking={checking}", "-o", f"UserKnownHostsFile={known}"]


def learned(scratch: Path) -> tuple[str, str] | None:
    """The key OpenSSH's client accepted on first use, from its scratch known_hosts."""
    known = scratch / "known_hosts"
    for line in known.read_text().splitlines() if known.is_file() else []:
        fields = line.split()
        if len(fields) >= 3:
            return fields[1], fields[2]
    return None


def policy(pinned: str | None, connection: str, where: str) -> Check:
    """The host_key_policy fsspec's SFTPFileSystem passes to paramiko."""
    return Check(parse(pinned, connection) if pinned else None, where)
