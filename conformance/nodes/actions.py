"""What an engine asks its adapter to do, and the events it reports."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(slots=True, frozen=True)
class SendUDP:
    """A UDP datagram (port 434 signalling or RFC 3519 tunnel data)."""

    src: str
    dst: str
    sport: int
    dport: int
    payload: bytes


@dataclass(slots=True, frozen=True)
class SendIPv4:
    """A complete IPv4 packet, header included (raw socket with IP_HDRINCL)."""

    packet: bytes


@dataclass(slots=True, frozen=True)
class DeliverIPv6:
    """An IPv6 packet for the node's own IPv6 stack or the link behind it (the TUN device)."""

    packet: bytes


@dataclass(slots=True, frozen=True)
class Event:
    """Something worth logging or testing: a binding change, a drop, a route, an error."""

    name: str
    data: dict = field(default_factory=dict)
    level: str = "info"

    def to_dict(self) -> dict:
        return {"event": self.name, "level": self.level, **self.data}


def events(actions, name: str | None = None) -> list[Event]:
    return [a for a in actions if isinstance(a, Event) and (name is None or a.name == name)]


def drops_malformed(method):
    """Wrap a receive_* method: input that fails to decode deep inside becomes a logged drop,
    never an exception out of the engine (a malformed packet never crashes a node)."""
    import functools

    from conformance.codec import DecodeError

    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        try:
            return method(self, *args, **kwargs)
        except DecodeError as err:
            return [Event("malformed-dropped", {"input": method.__name__, "error": str(err),
                                                "offset": err.offset, "field": err.field,
                                                "section": err.section}, "warning")]
    return wrapper
