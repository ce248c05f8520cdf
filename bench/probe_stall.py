"""Regression probe for the 40 ms stall: when does each piece of the relay's answer arrive?

    python bench/probe_stall.py RELAY_PORT

Posts relayed events over one keep-alive raw socket and prints, per request, the time each
recv() returned data and how many bytes. Healthy: headers and body arrive together, one recv
about one SIGNL4 delay after sending. A gap of ~40 ms between the header bytes and the body
bytes is Nagle's algorithm on the server waiting for the client's delayed ACK: the stall that
`disable_nagle_algorithm = True` in devhost/http_host.py fixed (see bench/README.md).
"""

from __future__ import annotations

import json
import socket
import sys
import time
from pathlib import Path

FIXTURE = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "guide_new.json"


def main(port: int, rounds: int = 5) -> None:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    guide = json.loads(FIXTURE.read_bytes())
    for n in range(rounds):
        body = json.dumps(dict(guide, **{"X-S4-ExternalID": f"HaloPSA-{9_000_000 + n}"})).encode()
        head = (
            f"POST /api/halopsa HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        ).encode()
        started = time.perf_counter()
        sock.sendall(head + body)
        received = b""
        chunks: list[str] = []
        while True:
            data = sock.recv(65536)
            chunks.append(f"{(time.perf_counter() - started) * 1000:6.1f} ms: {len(data)} B")
            received += data
            head_end = received.find(b"\r\n\r\n")
            if head_end >= 0:
                length = 0
                for line in received[:head_end].split(b"\r\n")[1:]:
                    key, _, value = line.partition(b":")
                    if key.strip().lower() == b"content-length":
                        length = int(value)
                if len(received) >= head_end + 4 + length:
                    break
        print(f"request {n}: " + "; ".join(chunks))
    sock.close()


if __name__ == "__main__":
    main(int(sys.argv[1]))
