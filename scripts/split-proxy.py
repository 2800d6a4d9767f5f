#!/usr/bin/env python3
"""A write/read splitting proxy for running the OCI conformance suite with its
own setup through read-only `dpx serve`.

The suite's content-discovery referrers tests need content only the suite can
make (its manifests carry random bytes per run), so it must push that content
itself. This proxy sends every write (POST, PUT, PATCH, DELETE) to the
upstream registry and every read (GET, HEAD) to dpx, so the suite pushes to
the upstream and reads through dpx, as a developer pushing to a registry and
pulling through the cache would.

docker-registry 2.8 has no referrers API, so for a manifest PUT with a
`subject` the proxy does what the distribution spec asks of a client pushing
to such a registry: it adds the manifest to the referrers tag schema index
(`sha256-<hex>` tag of the subject) and answers with `OCI-Subject`, as the
suite expects of a registry that accepted the subject.

    split-proxy.py LISTEN_PORT UPSTREAM_HOST:PORT DPX_HOST:PORT [STRIP_PREFIX]

STRIP_PREFIX (prefix mode, e.g. `127.0.0.1:5000/`) is removed from write paths
after `/v2/`, since the upstream knows its repositories without it.
A development tool (stdlib only), not part of CI.
"""

import hashlib
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

listen_port, upstream, reads = int(sys.argv[1]), sys.argv[2], sys.argv[3]
strip = sys.argv[4] if len(sys.argv) > 4 else ""
schema_lock = threading.Lock()


def forward(target, method, path, headers, body):
    conn = http.client.HTTPConnection(target, timeout=120)
    hdrs = {k: v for k, v in headers.items() if k.lower() not in HOP}
    if body or method in ("POST", "PUT", "PATCH"):
        hdrs["Content-Length"] = str(len(body))
    conn.request(method, path, body=body or None, headers=hdrs)
    resp = conn.getresponse()
    data = resp.read()
    conn.close()
    return resp.status, resp.getheaders(), data


def add_to_tag_schema(repo, content_type, body):
    """Appends the pushed manifest to its subject's sha256-<hex> index; returns the subject digest."""
    try:
        m = json.loads(body)
    except ValueError:
        return None
    subject = (m.get("subject") or {}).get("digest") if isinstance(m, dict) else None
    if not subject or ":" not in subject:
        return None
    desc = {"mediaType": content_type, "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body)}
    artifact_type = m.get("artifactType") or (m.get("config") or {}).get("mediaType")
    if artifact_type:
        desc["artifactType"] = artifact_type
    if m.get("annotations"):
        desc["annotations"] = m["annotations"]
    tag_path = f"/v2/{repo}/manifests/sha256-{subject.split(':', 1)[1]}"
    with schema_lock:
        status, _, data = forward(upstream, "GET", tag_path, {"Accept": OCI_INDEX}, b"")
        index = json.loads(data) if status == 200 else {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        index["manifests"] = [d for d in index["manifests"] if d.get("digest") != desc["digest"]] + [desc]
        status, _, data = forward(upstream, "PUT", tag_path, {"Content-Type": OCI_INDEX}, json.dumps(index).encode())
        if status != 201:
            sys.stderr.write(f"split-proxy: updating {tag_path} failed: {status} {data[:200]!r}\n")
            return None
    return subject


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        write = self.command not in ("GET", "HEAD")
        path = self.path
        extra = []
        if write:
            if strip and path.startswith("/v2/" + strip):
                path = "/v2/" + path[len("/v2/" + strip):]
            status, resp_headers, data = forward(upstream, self.command, path, headers, body)
            if self.command == "PUT" and "/manifests/" in path and status == 201:
                repo = path[len("/v2/"):path.rindex("/manifests/")]
                subject = add_to_tag_schema(repo, headers.get("Content-Type", ""), body)
                if subject:
                    extra.append(("OCI-Subject", subject))
        else:
            status, resp_headers, data = forward(reads, self.command, path, headers, body)
        self.send_response(status)
        length = None
        for k, v in resp_headers:
            if k.lower() in HOP - {"content-length"}:
                continue
            if k.lower() == "content-length":
                length = v
                continue
            if k.lower() == "location" and "://" in v:
                v = "/" + v.split("://", 1)[1].split("/", 1)[1]
            self.send_header(k, v)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


ThreadingHTTPServer(("127.0.0.1", listen_port), Handler).serve_forever()
