#!/usr/bin/env python3
"""Writes a synthetic dpx cache: real OCI manifests, configs and layer blobs
under their digests, media-type sidecars and tag records, with last-use times
(mtimes) spread over 60 days. For measuring `dpx cache ls|du` and `dpx purge`.

usage: synthetic-cache.py DIR [IMAGES=1000] [LAYERS=10] [MAX_LAYER_BYTES=8000]
(1000 x 10 gives 12,000 blobs: 10,000 layers, 1,000 configs, 1,000 manifests;
10,000 x 8 gives bench/run's 100,000 blobs and 10,000 tags.) Each image's
repository links (`_links`) name its manifest, config and layers, as a pull
leaves them, so `dpx serve` answers its tag from the cache.
"""
import hashlib, json, os, random, sys, time

root = sys.argv[1]
images = int(sys.argv[2]) if len(sys.argv) > 2 else 1000
layers = int(sys.argv[3]) if len(sys.argv) > 3 else 10
max_layer = int(sys.argv[4]) if len(sys.argv) > 4 else 8000
rng = random.Random(42)
now = time.time()

for d in ["blobs/sha256", "tmp", "locks", "manifests/sha256", "index"]:
    os.makedirs(os.path.join(root, d), exist_ok=True)
with open(os.path.join(root, "CACHEDIR.TAG"), "w") as f:
    f.write("Signature: 8a477f597d28d172789f06886806bc55\n")

def manifest_config_digest(manifest):
    return json.loads(manifest)["config"]["digest"]

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
        data = bases[i % 20] if j == 0 else rng.randbytes(rng.randint(max_layer // 8, max_layer))
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
    repo = os.path.join(root, "index/docker.io/synth", f"app{i // 10}")
    links = os.path.join(repo, "_links")
    os.makedirs(links, exist_ok=True)
    for d in [md, manifest_config_digest(manifest)] + [d["digest"] for d in descs]:
        open(os.path.join(links, d[7:]), "w").close()
    tags = os.path.join(repo, "tags")
    os.makedirs(tags, exist_ok=True)
    t = os.path.join(tags, f"v{i % 10}.json")
    with open(t, "w") as f:
        json.dump({"digest": md, "fetched_at": int(used), "checked_at": int(used)}, f)
    os.utime(t, (used, used))
