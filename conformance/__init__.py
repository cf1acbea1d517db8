"""dsmip4-conformance: conformance and interop test suite for Dual-Stack Mobile IPv4 (RFC 5454)."""

__version__ = "0.1.0"
RFC = "RFC 5454"
