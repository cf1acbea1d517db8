"""Typed decode errors and observations.

A DecodeError is structural damage: the bytes cannot be read as the message they claim to be.
An Observation is a rule the sender broke that the receiver is told to tolerate or judge
(non-zero reserved bits, stray prefix bits, unknown subtypes...): the message still decodes.
"""

from dataclasses import dataclass


class DecodeError(ValueError):
    """The bytes are not a well-formed message; says where and which rule."""

    def __init__(self, offset: int, field: str, reason: str, section: str):
        self.offset = offset
        self.field = field
        self.reason = reason
        self.section = section
        super().__init__(f"offset {offset}: {field}: {reason} [{section}]")

    def to_dict(self) -> dict:
        return {"offset": self.offset, "field": self.field, "reason": self.reason,
                "section": self.section}


@dataclass(slots=True, frozen=True)
class Observation:
    """A tolerated violation: which byte, which field, which rule (a requirement id)."""

    offset: int
    field: str
    rule: str
    message: str

    def to_dict(self) -> dict:
        return {"offset": self.offset, "field": self.field, "rule": self.rule,
                "message": self.message}
