#!/usr/bin/env python3
"""Writes a synthetic dpx cache: real OCI manifests, configs and layer blobs
under their digests, media-type sidecars and tag records, with last-use times
(mtimes) spread over 60 days. For measuring `dpx cache ls|du` and `dpx purge`.

usage: synthetic-cache.py DIR [IMAGES=1000] [LAYERS=10]
(1000 x 10 gives 12,000 blobs: 10,000 layers, 1,000 configs, 1,000 manifests.)
"""
import hashlib, json, os, random, sys, time

root = sys.argv[1]
images = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
layers = int(sys.argv[3]) if len(sys.argv) > 3 else 10
rng = random.Random(42)
now = time.time()

for d in ["blobs/sha256", "tmp", "locks", "manifests/sha256", "index"]:
    os.makedirs(os.path.join(root, d), exist_ok=True)
with open(os.path.join(root, "CACHEDIR.TAG"), "w") as f:
    f.write("Signature: 8a477f597d28d172789f06886806bc55\n")

def put(data, used):
    hexd = hashlib.sha256(data).hexdigest()
    d = os.path.join(root, "blobs/sha256", hexd[:2])
    os.makedirs(d, exist_ok=True)
    p = os.path.join(d, hexd)
    with open(p, "wb") as f:
        f.write(data)
    os.utime(p, (used, used))
    return "sha256:" + hexd

# A few base layers shared by many images, as in real caches.
bases = [rng.randbytes(rng.randint(2000, 8000)) for _ in range(20)]
for i in range(images):
    used = now - rng.uniform(0, 60 * 86400)
    descs = []
    for j in range(layers):
        data = bases[i % 20] if j == 0 else rng.randbytes(rng.randint(1000, 8000))
        descs.append({"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                      "digest": put(data, used), "size": len(data)})
    config = json.dumps({"architecture": "amd64", "os": "linux", "n": i,
                         "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descs]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                           "config": {"mediaType": "application/vnd.oci.image.config.v1+json",
                                      "digest": put(config, used), "size": len(config)},
                           "layers": descs}).encode()
    md = put(manifest, used)
    with open(os.path.join(root, "manifests/sha256", md[7:] + ".json"), "w") as f:
        f.write("application/vnd.oci.image.manifest.v1+json")
    tags = os.path.join(root, "index/docker.io/synth", f"app{i // 10}", "tags")
    os.makedirs(tags, exist_ok=True)
    t = os.path.join(tags, f"v{i % 10}.json")
    with open(t, "w") as f:
        json.dump({"digest": md, "fetched_at": int(used), "checked_at": int(used)}, f)
    os.utime(t, (used, used))
