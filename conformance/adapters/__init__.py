"""Thin adapters that run the sans-I/O engines on real sockets, raw sockets and TUN devices."""
