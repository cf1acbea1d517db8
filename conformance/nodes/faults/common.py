"""What the fault layers of every role share."""

from __future__ import annotations

import dataclasses

from conformance.nodes.actions import SendUDP

# Answers Neighbor Solicitations for an address that is not the tunnel's (RFC 4213 §3.7).
WRONG_LINK_LOCAL = bytes.fromhex("fe80000000000000000000000000abcd")


def replace_payload(action: SendUDP, payload: bytes) -> SendUDP:
    return dataclasses.replace(action, payload=payload)
