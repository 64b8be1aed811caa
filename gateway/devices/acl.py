"""The broker's password file and ACL, rendered from the registry (pure text, no I/O).

Mosquitto's ACL file: `user NAME` followed by `topic read|write|readwrite FILTER` lines
grants that user; `pattern` lines apply to every user, `%u` standing for the username.
A terminal logs in with its device id as username, so the patterns confine it to its own
subtree: it writes only its uplinks and reads only its downlinks. Everything not granted
is refused (publishes are dropped with "not authorized", subscriptions refused).

Casework backends (`casework.<name>`, several) drive the case lifecycle: each writes only
its own commands topic and reads only its own answers, every case event and the
normalized reports. Their grants are `topic` lines in their own `user` sections, never
`pattern`s: a pattern would apply to terminals too.

A suspended or revoked terminal loses its password line, which keeps it out of password
listeners; one that logs in by certificate (`use_identity_as_username`) never checks the
password file, so its `user` section denies it everything (`topic deny #` outranks the
patterns: Mosquitto checks a user's denials first).
"""

from __future__ import annotations

from collections.abc import Iterable

from gateway.devices.device_registry import Account, Device
from gateway.protocols import casework

UPLINKS = ("report", "media/+/+", "status", "track")
DOWNLINKS = ("ack", "task", "config", "error")
NORMALIZED = "cgt/v1/normalized/#"

_HEADER = "# Written by `gateway broker-config` / `gateway devices`: edits are overwritten.\n"


def render_passwords(devices: Iterable[Device], accounts: Iterable[Account]) -> str:
    """`username:$7$...` lines: the accounts and every *active* device; a suspended or
    revoked device has no line, so the broker refuses its CONNECT."""
    lines = [f"{account.username}:{account.credential_hash}" for account in accounts]
    lines += [
        f"{device.device_id}:{device.credential_hash}"
        for device in devices
        if device.status == "active"
    ]
    return "".join(f"{line}\n" for line in lines)


def render_acl(accounts: Iterable[Account], devices: Iterable[Device] = ()) -> str:
    sections = [_HEADER]
    for account in accounts:
        if account.role == "gateway":
            grants = [f"topic read cgt/v1/+/{uplink}" for uplink in UPLINKS]
            grants += [f"topic write cgt/v1/+/{downlink}" for downlink in DOWNLINKS]
            grants.append(f"topic write {NORMALIZED}")
            grants.append(f"topic read {casework.COMMANDS_SUBSCRIPTION}")
            grants.append(f"topic write {casework.answers_topic('+')}")
            grants.append(f"topic write {casework.EVENTS_SUBSCRIPTION}")
            comment = (
                "# the gateway: every uplink and casework command in; downlinks, answers,"
                " case events and the normalized tree out"
            )
        elif account.role == "casework":
            grants = [
                f"topic write {casework.commands_topic(account.username)}",
                f"topic read {casework.answers_topic(account.username)}",
                f"topic read {casework.EVENTS_SUBSCRIPTION}",
                f"topic read {NORMALIZED}",
            ]
            comment = "# a casework backend: its own commands out, its answers and the cases in"
        else:
            grants = [f"topic read {NORMALIZED}"]
            comment = "# a backend: the normalized reports, nothing else"
        sections.append("\n".join([comment, f"user {account.username}", *grants]) + "\n")
    terminal = ["# every terminal (username = device id): its own topics only"]
    terminal += [f"pattern write cgt/v1/%u/{uplink}" for uplink in UPLINKS]
    terminal += [f"pattern read cgt/v1/%u/{downlink}" for downlink in DOWNLINKS]
    sections.append("\n".join(terminal) + "\n")
    shut = [f"user {d.device_id}\ntopic deny #" for d in devices if d.status != "active"]
    if shut:
        comment = "# suspended and revoked terminals: nothing at all"
        sections.append("\n".join([comment, *shut]) + "\n")
    return "\n".join(sections)
