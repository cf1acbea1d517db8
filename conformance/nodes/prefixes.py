"""Registered IPv6 prefixes of every mobile node, with the overlap rule of RFC 5454 §3.3.

A prefix is (length, value) with value = the top `length` bits as an int. Two prefixes overlap
exactly when one contains the other, so the check is: is a shorter-or-equal prefix of another
node registered above it (one dict lookup per prefix length in use), or a longer one below it
(one counter lookup). Both stay constant-time as the table grows: the cost depends on how many
distinct lengths are in use, not on how many prefixes are registered.
"""

from __future__ import annotations

import ipaddress
from collections import defaultdict


def prefix_key(network: ipaddress.IPv6Network) -> tuple[int, int]:
    length = network.prefixlen
    return length, int(network.network_address) >> (128 - length)


class PrefixTable:
    def __init__(self):
        self._by_len: dict[int, dict[int, object]] = {}
        self._lengths: list[int] = []  # in use, ascending
        # For each length L that has been queried or used: ancestor key at L -> {owner: count}
        # of registered prefixes longer than L below that key.
        self._below: dict[int, dict[int, dict]] = {}

    def __len__(self) -> int:
        return sum(len(d) for d in self._by_len.values())

    def owner(self, length: int, value: int):
        table = self._by_len.get(length)
        return table.get(value) if table else None

    def _below_index(self, length: int) -> dict[int, dict]:
        index = self._below.get(length)
        if index is None:
            index = defaultdict(dict)
            for m, table in self._by_len.items():
                if m > length:
                    for value, owner in table.items():
                        counts = index[value >> (m - length)]
                        counts[owner] = counts.get(owner, 0) + 1
            self._below[length] = index
        return index

    def conflict(self, length: int, value: int, owner):
        """The owner of a registered prefix that overlaps (length, value) and is not `owner`."""
        for m in self._lengths:
            if m > length:
                break
            other = self._by_len[m].get(value >> (length - m))
            if other is not None and other != owner:
                return other
        counts = self._below_index(length).get(value)
        if counts:
            for other in counts:
                if other != owner:
                    return other
        return None

    def add(self, length: int, value: int, owner) -> None:
        table = self._by_len.get(length)
        if table is None:
            table = self._by_len[length] = {}
            self._lengths = sorted(self._by_len)
        if value in table:
            if table[value] == owner:
                return
            raise ValueError(f"prefix {length}/{value:x} already belongs to {table[value]}")
        table[value] = owner
        for shorter, index in self._below.items():
            if shorter < length:
                counts = index[value >> (length - shorter)]
                counts[owner] = counts.get(owner, 0) + 1

    def remove(self, length: int, value: int) -> None:
        table = self._by_len.get(length)
        if not table or value not in table:
            return
        owner = table.pop(value)
        if not table:
            del self._by_len[length]
            self._lengths = sorted(self._by_len)
        for shorter, index in self._below.items():
            if shorter < length:
                key = value >> (length - shorter)
                counts = index.get(key)
                if counts and owner in counts:
                    counts[owner] -= 1
                    if not counts[owner]:
                        del counts[owner]
                    if not counts:
                        del index[key]

    def lookup(self, address: int):
        """Longest-match owner and length for a 128-bit address, or (None, None)."""
        for length in reversed(self._lengths):
            owner = self._by_len[length].get(address >> (128 - length) if length else 0)
            if owner is not None:
                return owner, length
        return None, None
