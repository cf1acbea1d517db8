"""Minimal control-socket client: `python -m conformance.ctl SOCKET COMMAND...`.

Standard library only and nothing else imported, so device profiles can call it many times a
run at the cost of a bare interpreter start.
"""

import json
import socket
import sys


def main(argv) -> int:
    if len(argv) < 2:
        print("usage: python -m conformance.ctl SOCKET COMMAND...", file=sys.stderr)
        return 2
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
            sock.settimeout(5)
            sock.connect(argv[0])
            sock.sendall(" ".join(argv[1:]).encode() + b"\n")
            data = b""
            while not data.endswith(b"\n"):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        reply = json.loads(data)
    except (OSError, ValueError) as exc:
        print(f"conformance.ctl: {argv[0]}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(reply))
    return 1 if "error" in reply else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
