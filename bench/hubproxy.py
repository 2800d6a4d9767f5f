#!/usr/bin/env python3
"""A Docker-Hub-like front for a plain distribution registry, for bench/run:
every request waits LATENCY_MS before it is answered (one round trip to a
far registry), and the registry API wants a bearer token, as Docker Hub's
does: `/v2/...` without one is a 401 whose challenge names `/token` here.
So a direct client pays what it pays against the Hub (ping, token, manifest,
blobs) and so does a proxy in front of it.

    hubproxy.py LISTEN_PORT UPSTREAM_HOST:PORT LATENCY_MS [STREAM_MB_S]

With STREAM_MB_S, each connection's response bodies are paced to that many
MB/s (10^6 bytes), as one TCP stream over a far link is: its window over the
round trip bounds it, and a CDN may cap it too. Several streams at once get
that each (the link itself is not modelled as a bottleneck).

`GET /_stats` (no latency, not counted) answers the request counts by kind
(ping, token, manifest, blob, other) and the response body bytes sent;
`GET /_reset` zeroes them. Python stdlib only; loopback only.
"""

import asyncio
import json
import sys
import time

TOKEN = "bench-token"
CHUNK = 1 << 18


class Stats:
    def __init__(self):
        self.reset()

    def reset(self):
        self.requests = {"ping": 0, "token": 0, "manifest": 0, "blob": 0, "other": 0}
        self.blob_bytes = 0
        self.body_bytes = 0

    def as_json(self):
        return json.dumps({
            "requests": self.requests,
            "total_requests": sum(self.requests.values()),
            "blob_bytes": self.blob_bytes,
            "body_bytes": self.body_bytes,
        }).encode()


def kind_of(path):
    p = path.partition("?")[0]
    if p.startswith("/token"):
        return "token"
    if p in ("/v2", "/v2/"):
        return "ping"
    if "/manifests/" in p:
        return "manifest"
    if "/blobs/" in p:
        return "blob"
    return "other"


def parse_head(raw):
    lines = raw.decode("latin-1").split("\r\n")
    first = lines[0]
    headers = []
    for line in lines[1:]:
        if not line:
            continue
        name, _, value = line.partition(":")
        headers.append((name.strip(), value.strip()))
    return first, headers


def header(headers, name):
    for k, v in headers:
        if k.lower() == name:
            return v
    return None


def simple_response(status, reason, headers, body):
    head = f"HTTP/1.1 {status} {reason}\r\n"
    for k, v in headers:
        head += f"{k}: {v}\r\n"
    head += f"Content-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


class Pace:
    """Holds a body's bytes to `rate` bytes per second from its start (no limit: None)."""

    def __init__(self, rate):
        self.rate = rate
        self.start = time.monotonic()
        self.sent = 0

    async def sent_bytes(self, n):
        if not self.rate:
            return
        self.sent += n
        ahead = self.start + self.sent / self.rate - time.monotonic()
        if ahead > 0:
            await asyncio.sleep(ahead)


async def copy_exact(reader, writer, n, pace=None):
    while n > 0:
        data = await reader.read(min(n, CHUNK))
        if not data:
            raise ConnectionError("upstream closed mid-body")
        writer.write(data)
        n -= len(data)
        await writer.drain()
        if pace:
            await pace.sent_bytes(len(data))


async def copy_chunked(reader, writer, pace=None):
    """Relays a chunked body as is; returns the payload byte count."""
    total = 0
    while True:
        line = await reader.readuntil(b"\r\n")
        writer.write(line)
        size = int(line.split(b";")[0].strip(), 16)
        if size == 0:
            while True:  # trailers, then the empty line
                t = await reader.readuntil(b"\r\n")
                writer.write(t)
                if t == b"\r\n":
                    break
            await writer.drain()
            return total
        await copy_exact(reader, writer, size + 2, pace)
        total += size


class Proxy:
    def __init__(self, port, upstream, latency, stream_rate=None):
        self.port = port
        self.upstream = upstream.split(":")
        self.latency = latency
        self.stream_rate = stream_rate
        self.stats = Stats()

    async def handle(self, creader, cwriter):
        up = None
        try:
            # dockerd tries HTTPS first on a registry it may reach over plain HTTP;
            # closing at once on a TLS hello makes it fall back without waiting.
            lead = await creader.read(1)
            if not lead or lead == b"\x16":
                return
            while True:
                try:
                    raw = lead + await creader.readuntil(b"\r\n\r\n")
                    lead = b""
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                first, headers = parse_head(raw)
                method, path, _ = first.split(" ", 2)
                length = int(header(headers, "content-length") or 0)
                body = await creader.readexactly(length) if length else b""
                if path.startswith("/_stats") or path.startswith("/_reset"):
                    if path.startswith("/_reset"):
                        self.stats.reset()
                    cwriter.write(simple_response(200, "OK", [("Content-Type", "application/json")],
                                                  self.stats.as_json()))
                    await cwriter.drain()
                    continue
                kind = kind_of(path)
                self.stats.requests[kind] += 1
                await asyncio.sleep(self.latency)
                if kind == "token":
                    out = json.dumps({"token": TOKEN, "access_token": TOKEN, "expires_in": 300}).encode()
                    cwriter.write(simple_response(200, "OK", [("Content-Type", "application/json")], out))
                    await cwriter.drain()
                    continue
                auth = header(headers, "authorization") or ""
                if auth != f"Bearer {TOKEN}":
                    realm = f"http://127.0.0.1:{self.port}/token"
                    challenge = f'Bearer realm="{realm}",service="bench-hub"'
                    p = path.partition("?")[0]
                    for sep in ("/manifests/", "/blobs/", "/tags/"):
                        if sep in p:
                            repo = p[len("/v2/"):].split(sep)[0]
                            challenge += f',scope="repository:{repo}:pull"'
                            break
                    err = b'{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}'
                    cwriter.write(simple_response(401, "Unauthorized", [
                        ("Content-Type", "application/json"), ("WWW-Authenticate", challenge),
                        ("Docker-Distribution-API-Version", "registry/2.0")], err))
                    await cwriter.drain()
                    continue
                if up is None:
                    up = await asyncio.open_connection(self.upstream[0], int(self.upstream[1]))
                ureader, uwriter = up
                fwd = first + "\r\n" + "".join(
                    f"{k}: {v}\r\n" for k, v in headers if k.lower() != "authorization") + "\r\n"
                uwriter.write(fwd.encode("latin-1") + body)
                await uwriter.drain()
                rhead = await ureader.readuntil(b"\r\n\r\n")
                rfirst, rheaders = parse_head(rhead)
                status = int(rfirst.split(" ")[1])
                cwriter.write(rhead)
                sent = 0
                pace = Pace(self.stream_rate)
                if method == "HEAD" or status in (204, 304) or 100 <= status < 200:
                    pass
                elif (header(rheaders, "transfer-encoding") or "").lower() == "chunked":
                    sent = await copy_chunked(ureader, cwriter, pace)
                else:
                    sent = int(header(rheaders, "content-length") or 0)
                    await copy_exact(ureader, cwriter, sent, pace)
                await cwriter.drain()
                self.stats.body_bytes += sent
                if kind == "blob":
                    self.stats.blob_bytes += sent
                if (header(rheaders, "connection") or "").lower() == "close":
                    uwriter.close()
                    up = None
        except (ConnectionError, asyncio.IncompleteReadError):
            return
        finally:
            cwriter.close()
            if up is not None:
                up[1].close()

    async def main(self):
        server = await asyncio.start_server(self.handle, "127.0.0.1", self.port, limit=1 << 20)
        async with server:
            await server.serve_forever()


if __name__ == "__main__":
    port, upstream, latency_ms = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
    mb_s = float(sys.argv[4]) if len(sys.argv) > 4 else 0
    asyncio.run(Proxy(port, upstream, latency_ms / 1000, mb_s * 1e6 if mb_s > 0 else None).main())
