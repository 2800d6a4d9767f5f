#!/usr/bin/env bash
# Cached-manifest requests per second with and without last-use recording
# (cache::usage), same binary, same run: `DPX_RECORD_USE=0` turns recording
# off. Needs wrk (apt-get install wrk) and a release build.
#   bench/usage-recording.sh [seconds per round] [rounds]
set -euo pipefail
secs=${1:-10}
rounds=${2:-3}
dpx=${DPX:-target/release/dpx}
work=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$work"' EXIT

# A cache with one image manifest, stored and linked to library/bench as a
# pull would leave it; the upstream is never asked (a closed port).
cache=$work/cache
layer=$(head -c 1000 /dev/urandom | sha256sum | cut -d' ' -f1)
manifest='{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:'$layer'","size":1000},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:'$layer'","size":1000}]}'
hex=$(printf '%s' "$manifest" | sha256sum | cut -d' ' -f1)
mkdir -p "$cache/blobs/sha256/${hex:0:2}" "$cache/manifests/sha256" "$cache/index/docker.io/library/bench/_links"
printf '%s' "$manifest" > "$cache/blobs/sha256/${hex:0:2}/$hex"
printf 'application/vnd.oci.image.manifest.v1+json' > "$cache/manifests/sha256/$hex.json"
touch "$cache/index/docker.io/library/bench/_links/$hex" "$cache/index/docker.io/library/bench/_links/$layer"
printf '[registries."docker.io"]\nurl = "http://127.0.0.1:9"\n' > "$work/config.toml"

run() { # $1 = DPX_RECORD_USE value
    DPX_RECORD_USE=$1 "$dpx" --config "$work/config.toml" --cache-dir "$cache" serve --listen 127.0.0.1:0 \
        2> "$work/serve.log" &
    local pid=$!
    local addr=""
    for _ in $(seq 100); do
        addr=$(sed -n 's|.*listening on http://\([^ ]*\).*|\1|p' "$work/serve.log")
        [ -n "$addr" ] && break
        sleep 0.1
    done
    local url="http://$addr/v2/library/bench/manifests/sha256:$hex"
    curl -sf -o /dev/null "$url"
    wrk -t2 -c32 -d"${secs}s" "$url" | awk '/Requests\/sec/ {print $2}'
    kill "$pid"; wait "$pid" 2>/dev/null || true
}

for r in $(seq "$rounds"); do
    off=$(run 0)
    on=$(run 1)
    echo "round $r: recording off ${off} req/s, on ${on} req/s"
done
