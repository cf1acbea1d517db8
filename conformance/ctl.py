"""Minimal control-socket client: `python -m conformance.ctl SOCKET COMMAND...`.

Standard library only and nothing else imported, so device profiles can call it many times a
run at the cost of a bare interpreter start.
"""

import json
import socket
import sys


def request(path: str, command: str, timeout: float = 5.0) -> dict:
    """Send one command line to a node's control socket; its JSON answer."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        sock.connect(path)
        sock.sendall(command.encode() + b"\n")
        data = b""
        while not data.endswith(b"\n"):
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
    return json.loads(data)


def main(argv) -> int:
    if len(argv) < 2:
        print("usage: python -m conformance.ctl SOCKET COMMAND...", file=sys.stderr)
        return 2
    try:
        reply = request(argv[0], " ".join(argv[1:]))
    except (OSError, ValueError) as exc:
        print(f"conformance.ctl: {argv[0]}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 1 if "error" in reply else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
