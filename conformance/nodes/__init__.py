"""Reference Mobile IPv4 nodes with RFC 5454 support: sans-I/O engines.

Each engine takes received bytes and the current time, and returns actions (datagrams and
packets to send, IPv6 packets to deliver, events to log); it never touches a socket or the
wall clock. Adapters in conformance.adapters run them on real sockets and TUN devices.
"""
