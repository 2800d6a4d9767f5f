#!/usr/bin/env python3
"""Splits the conformance suite's requests between read-only `dpx serve` and
the upstream registry, so the suite can push its own content and read it back
through dpx (scripts/conformance.sh, the content-discovery runs).

    conformance-proxy.py LISTEN_PORT DPX_HOST:PORT UPSTREAM_HOST:PORT [PREFIX]

- Reads (GET, HEAD) go to dpx, unchanged: they are what is under test.
- Writes (POST, PUT, PATCH, DELETE) and upload-session requests go to the
  upstream, as a developer pushes to a registry and pulls through the cache.
  PREFIX (prefix mode, e.g. `127.0.0.1:5000/`) is the part of the repository
  name that only dpx knows: it is cut from write paths and put back into
  Location headers, so the suite's follow-up requests come here again.
- docker-registry 2.8 has no referrers API, so the proxy does for the suite
  what the distribution spec asks of a client pushing to such a registry
  ("Pushing Manifests with Subject", "Deleting Manifests"): it keeps the
  subject's referrers tag (`sha256-<hex>`, an OCI index of descriptors) up to
  date, and answers a manifest PUT with `OCI-Subject` once it has.

A development tool (python3 stdlib only), not part of CI. Logs one line per
request to stderr: method, path, where it went, status.
"""

import hashlib
import http.client
import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
# Hop-by-hop headers, and the length, which the proxy sets itself.
HOP = {"connection", "keep-alive", "transfer-encoding", "host", "content-length"}

listen_port, dpx, upstream = int(sys.argv[1]), sys.argv[2], sys.argv[3]
prefix = sys.argv[4] if len(sys.argv) > 4 else ""
# The suite is sequential; the lock still keeps each read-modify-write of a
# referrers tag whole.
tag_lock = threading.Lock()


def log(msg):
    sys.stderr.write(msg + "\n")
    sys.stderr.flush()


def send(target, method, path, headers=None, body=b""):
    """One request; returns (status, header list, body)."""
    conn = http.client.HTTPConnection(target, timeout=120)
    try:
        hdrs = {k: v for k, v in (headers or {}).items() if k.lower() not in HOP}
        if body or method in ("POST", "PUT", "PATCH"):
            hdrs["Content-Length"] = str(len(body))
        conn.request(method, path, body=body or None, headers=hdrs)
        resp = conn.getresponse()
        return resp.status, resp.getheaders(), resp.read()
    finally:
        conn.close()


def split_manifest_path(path):
    """`/v2/<repo>/manifests/<ref>` -> (repo, ref), else None."""
    head, sep, ref = path.partition("?")[0].rpartition("/manifests/")
    if not sep or not head.startswith("/v2/"):
        return None
    return head[len("/v2/"):], ref


def subject_of(body):
    """The subject digest of a manifest or index body, and the parsed body."""
    try:
        doc = json.loads(body)
    except ValueError:
        return None, None
    if not isinstance(doc, dict) or not isinstance(doc.get("subject"), dict):
        return None, doc
    digest = doc["subject"].get("digest")
    return (digest if isinstance(digest, str) and ":" in digest else None), doc


def update_referrers_tag(repo, subject, change):
    """Reads the subject's referrers tag from the upstream (an empty index when
    it does not exist), applies `change` to its descriptor list and pushes it
    back. Returns False (and logs why) when that was not possible."""
    path = f"/v2/{repo}/manifests/sha256-{subject.split(':', 1)[1]}"
    with tag_lock:
        status, _, data = send(upstream, "GET", path, {"Accept": OCI_INDEX})
        if status == 404:
            index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []}
        elif status == 200:
            index = json.loads(data)
            if index.get("mediaType") != OCI_INDEX:
                log(f"referrers tag {path} is not an OCI index; left alone")
                return False
        else:
            log(f"referrers tag {path}: GET answered {status}")
            return False
        index["manifests"] = change(index.get("manifests", []))
        status, _, data = send(upstream, "PUT", path, {"Content-Type": OCI_INDEX},
                               json.dumps(index).encode())
        if status != 201:
            log(f"referrers tag {path}: PUT answered {status} {data[:200]!r}")
            return False
        log(f"referrers tag {path}: {len(index['manifests'])} descriptor(s)")
        return True


def add_referrer(repo, media_type, body):
    """After a manifest with a subject was pushed: adds its descriptor to the
    subject's referrers tag. Returns the subject digest when done."""
    subject, doc = subject_of(body)
    if not subject:
        return None
    desc = {"mediaType": doc.get("mediaType") or media_type,
            "digest": "sha256:" + hashlib.sha256(body).hexdigest(), "size": len(body)}
    # The spec: artifactType, else the config's media type (image manifests).
    artifact_type = doc.get("artifactType") or (doc.get("config") or {}).get("mediaType")
    if artifact_type:
        desc["artifactType"] = artifact_type
    if doc.get("annotations"):
        desc["annotations"] = doc["annotations"]

    def change(manifests):
        return [d for d in manifests if d.get("digest") != desc["digest"]] + [desc]

    return subject if update_referrers_tag(repo, subject, change) else None


def subject_before_delete(repo, ref):
    """Before a manifest is deleted: its subject, which only its body tells."""
    status, _, body = send(upstream, "GET", f"/v2/{repo}/manifests/{ref}",
                           {"Accept": f"{OCI_MANIFEST}, {OCI_INDEX}"})
    return subject_of(body)[0] if status == 200 else None


def client_location(location):
    """An upstream Location, made relative (so the suite comes back here) and
    naming the repository as the client does."""
    if "://" in location:
        location = "/" + location.split("://", 1)[1].partition("/")[2]
    if prefix and location.startswith("/v2/"):
        location = "/v2/" + prefix + location[len("/v2/"):]
    return location


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def handle_any(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        headers = dict(self.headers.items())
        # Upload sessions live on the upstream, reads of them included.
        write = self.command not in ("GET", "HEAD") or "/blobs/uploads/" in self.path
        extra = []
        try:
            path = self.path
            if not write:
                status, resp_headers, data = send(dpx, self.command, path, headers, body)
            else:
                if prefix and path.startswith("/v2/" + prefix):
                    path = "/v2/" + path[len("/v2/" + prefix):]
                manifest = split_manifest_path(path)
                subject = None
                if self.command == "DELETE" and manifest:
                    subject = subject_before_delete(*manifest)
                status, resp_headers, data = send(upstream, self.command, path, headers, body)
                if manifest and self.command == "PUT" and status == 201:
                    added = add_referrer(manifest[0], headers.get("Content-Type", ""), body)
                    if added:
                        extra.append(("OCI-Subject", added))
                if manifest and subject and status == 202:
                    gone = manifest[1]
                    update_referrers_tag(manifest[0], subject,
                                         lambda ms: [d for d in ms if d.get("digest") != gone])
        except (OSError, http.client.HTTPException, ValueError) as err:
            log(f"{self.command} {self.path}: {err}")
            self.send_error(502, explain=str(err))
            return
        log(f"{self.command} {self.path} -> {'upstream' if write else 'dpx'} {path} {status}")

        # Without a Server and Date of its own: the answer is dpx's or the upstream's.
        self.send_response_only(status)
        length = None
        for k, v in resp_headers:
            if k.lower() == "content-length":
                length = v
            elif k.lower() == "location" and write:
                self.send_header(k, client_location(v))
            elif k.lower() not in HOP:
                self.send_header(k, v)
        for k, v in extra:
            self.send_header(k, v)
        # A HEAD answer carries the length of the body it does not send.
        self.send_header("Content-Length", length if self.command == "HEAD" and length else str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


ThreadingHTTPServer(("127.0.0.1", listen_port), Handler).serve_forever()
