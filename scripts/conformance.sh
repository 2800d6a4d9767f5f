#!/usr/bin/env bash
# Runs the OCI distribution-spec conformance suite (pull and content discovery)
# against `dpx serve`, in mirror mode (library/demo -> docker.io) and prefix
# mode (127.0.0.1:PORT/demo, and reg.example:5000/demo, a host known only from
# the config file), each with a cold cache and then a warm one.
#
# A development tool, not part of CI. It starts its own docker-registry (the
# upstream) on a free port and points dpx's docker.io at it. Two kinds of run:
#
# - read-only (<mode>-<cold|warm>): skopeo pushes an image under a few tags,
#   and the suite is told that tag, its digests and the tag list, so it pushes
#   nothing. Its referrers tests cannot pass so: they ask about content that
#   only its own setup makes.
# - push (push-<mode>-<cold|warm>): the suite pushes its own content through
#   scripts/conformance-proxy.py, which sends writes to the upstream (keeping
#   the referrers tag schema as a client must for a registry without the
#   referrers API) and reads to dpx. Tags are revalidated on every request
#   (tag_ttl = "0"): each run pushes new content under the same tags. Warm
#   means the dpx cache the cold run filled.
#
#   scripts/conformance.sh              # all twelve runs
#   ONLY=push-mirror scripts/conformance.sh   # runs whose name has this
#   SUITE=/path/to/oci-conformance scripts/conformance.sh
#   DPX=/path/to/dpx scripts/conformance.sh   # another build (no cargo build)
#
# Reports (junit.xml, out.txt with every request, serve.log, proxy.log) go to
# $OUT (default target/conformance/<run>/). Exits non-zero when any run has
# failures.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SUITE=${SUITE:-$root/../shared/tools/oci-conformance}
OUT=${OUT:-$root/target/conformance}
[ -x "$SUITE/run.sh" ] || { echo "no conformance suite at $SUITE (set SUITE=)" >&2; exit 2; }
for tool in docker-registry skopeo python3; do
  command -v "$tool" >/dev/null || { echo "conformance.sh needs $tool" >&2; exit 2; }
done

ONLY=${ONLY:-}
if [ -n "${DPX:-}" ]; then
  dpx=$DPX
else
  cargo build --quiet --bin dpx
  dpx=$root/target/debug/dpx
fi

work=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

wait_port() {
  local deadline=$((SECONDS + 30))
  until python3 -c "import socket,sys; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "nothing listens on port $1 ($2)" >&2; exit 1; }
    sleep 0.1
  done
}

# The upstream: docker-registry with its own storage.
rport=$(free_port)
upstream=127.0.0.1:$rport
cat >"$work/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $work/registry-data
  delete:
    enabled: true
http:
  addr: $upstream
EOF
docker-registry serve "$work/registry.yml" >"$work/registry.log" 2>&1 &
pids+=($!)
wait_port "$rport" docker-registry

# One single-platform OCI image (a real tar.gz layer) as an OCI layout.
python3 - "$work/layout" <<'PY'
import gzip, hashlib, io, json, os, sys, tarfile
layout = sys.argv[1]
os.makedirs(f"{layout}/blobs/sha256", exist_ok=True)
def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(f"{layout}/blobs/sha256/{d}", "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{d}", "size": len(data)}
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w") as tar:
    content = b"dpx conformance layer\n" * 100
    info = tarfile.TarInfo("hello.txt"); info.size = len(content); info.mtime = 0
    tar.addfile(info, io.BytesIO(content))
raw = raw.getvalue()
layer = put(gzip.compress(raw, mtime=0))
config = put(json.dumps({"architecture": "amd64", "os": "linux", "config": {},
    "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}}).encode())
manifest = put(json.dumps({"schemaVersion": 2,
    "mediaType": "application/vnd.oci.image.manifest.v1+json",
    "config": {"mediaType": "application/vnd.oci.image.config.v1+json", **config},
    "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", **layer}]}).encode())
with open(f"{layout}/oci-layout", "w") as f:
    json.dump({"imageLayoutVersion": "1.0.0"}, f)
with open(f"{layout}/index.json", "w") as f:
    json.dump({"schemaVersion": 2, "manifests": [{"mediaType": "application/vnd.oci.image.manifest.v1+json",
        **manifest, "annotations": {"org.opencontainers.image.ref.name": "v1"}}]}, f)
with open(f"{layout}/digests", "w") as f:
    f.write(f"{manifest['digest']} {config['digest']}\n")
PY
read -r manifest_digest config_digest <"$work/layout/digests"

# Several tags, so that the tag-list tests have pages to turn.
tags=(v1 v2 v3 v4 v5)
for repo in library/demo demo; do
  for tag in "${tags[@]}"; do
    skopeo copy --quiet --dest-tls-verify=false --preserve-digests \
      "oci:$work/layout:v1" "docker://$upstream/$repo:$tag" >/dev/null
  done
done
tag_list=$(IFS=,; echo "${tags[*]}")

cat >"$work/config.toml" <<EOF
[registries."docker.io"]
url = "http://$upstream"

[registries."$upstream"]
url = "http://$upstream"

[registries."reg.example:5000"]
url = "http://$upstream"
EOF

# The push runs: the same, and every tag request revalidated.
{ printf '[cache]\ntag_ttl = "0"\n\n'; cat "$work/config.toml"; } >"$work/config-push.toml"

serve_pid=
start_dpx() {
  local cache=$1 log=$2 config=${3:-$work/config.toml}
  # Empty the log first: the background redirection truncates it only once the
  # child runs, and a warm run would read the cold run's address meanwhile.
  : >"$log"
  DPX_LOG=dpx=info "$dpx" --config "$config" --cache-dir "$cache" \
    serve --listen 127.0.0.1:0 >/dev/null 2>"$log" &
  serve_pid=$!
  pids+=("$serve_pid")
  local deadline=$((SECONDS + 30))
  until dpx_addr=$(sed -n 's|^dpx serve: listening on http://\([^ ]*\).*|\1|p' "$log" | head -n1) && [ -n "$dpx_addr" ]; do
    kill -0 "$serve_pid" 2>/dev/null || { cat "$log" >&2; exit 1; }
    [ $SECONDS -lt $deadline ] || { echo "dpx serve did not start" >&2; exit 1; }
    sleep 0.1
  done
}

stop_dpx() {
  kill "$serve_pid" 2>/dev/null || true
  wait "$serve_pid" 2>/dev/null || true
}

# One line per test from a junit.xml, then "N passed, M failed"; fails on failures.
summarize() {
  python3 - "$1" <<'PY'
import sys, xml.etree.ElementTree as ET
p = f = 0
for tc in ET.parse(sys.argv[1]).iter('testcase'):
    if tc.find('skipped') is not None: continue
    name = tc.get('name').replace('OCI Distribution Conformance Tests ', '')
    bad = tc.find('failure') is not None or tc.find('error') is not None
    print(("FAIL  " if bad else "pass  ") + name)
    f += bad; p += not bad
print(f"{p} passed, {f} failed")
sys.exit(1 if f else 0)
PY
}

status=0
summary=()
for mode in mirror prefix prefix-host; do
  case $mode in
    mirror) namespace=library/demo ;;
    prefix) namespace=$upstream/demo ;;
    prefix-host) namespace=reg.example:5000/demo ;;
  esac
  cache=$work/cache-$mode
  for temp in cold warm; do
    run=$mode-$temp
    [[ $run == *"$ONLY"* ]] || continue
    mkdir -p "$OUT/$run"
    start_dpx "$cache" "$OUT/$run/serve.log"
    echo "== $run: dpx serve on $dpx_addr, namespace $namespace"
    if OCI_REPORT_DIR="$OUT/$run" OCI_TAG_LIST=$tag_list \
      "$SUITE/run.sh" "http://$dpx_addr" "$namespace" v1 "$manifest_digest" "$config_digest" \
      >"$OUT/$run/summary.txt"; then :; else status=1; fi
    grep -v '^pass ' "$OUT/$run/summary.txt" || true
    summary+=("$run: $(tail -n1 "$OUT/$run/summary.txt")")
    stop_dpx
  done
done

# The read-only runs again with client auth on: the suite logs in as the dpx
# user (Bearer challenge, /token, a JWT on every request).
{ cat "$work/config.toml"; printf '\n[serve.auth]\nenabled = true\n'; } >"$work/config-auth.toml"
auth_password=$("$dpx" --config "$work/config-auth.toml" --cache-dir "$work/cache-auth" serve --print-password 2>/dev/null)
for temp in cold warm; do
  run=auth-mirror-$temp
  [[ $run == *"$ONLY"* ]] || continue
  mkdir -p "$OUT/$run"
  start_dpx "$work/cache-auth" "$OUT/$run/serve.log" "$work/config-auth.toml"
  echo "== $run: dpx serve with client auth on $dpx_addr, namespace library/demo"
  if OCI_USERNAME=dpx OCI_PASSWORD=$auth_password OCI_REPORT_DIR="$OUT/$run" OCI_TAG_LIST=$tag_list \
    "$SUITE/run.sh" "http://$dpx_addr" library/demo v1 "$manifest_digest" "$config_digest" \
    >"$OUT/$run/summary.txt"; then :; else status=1; fi
  grep -v '^pass ' "$OUT/$run/summary.txt" || true
  summary+=("$run: $(tail -n1 "$OUT/$run/summary.txt")")
  stop_dpx
done

# Push runs: the suite's own setup, writes around dpx, reads through it.
for mode in mirror prefix prefix-host; do
  case $mode in
    mirror) namespace=conformance/mirror prefix= ;;
    prefix) namespace=$upstream/conformance/prefix prefix=$upstream/ ;;
    prefix-host) namespace=reg.example:5000/conformance/prefix-host prefix=reg.example:5000/ ;;
  esac
  cache=$work/cache-push-$mode
  for temp in cold warm; do
    run=push-$mode-$temp
    [[ $run == *"$ONLY"* ]] || continue
    mkdir -p "$OUT/$run"
    rm -f "$OUT/$run/junit.xml"
    start_dpx "$cache" "$OUT/$run/serve.log" "$work/config-push.toml"
    pport=$(free_port)
    python3 "$root/scripts/conformance-proxy.py" "$pport" "$dpx_addr" "$upstream" $prefix \
      2>"$OUT/$run/proxy.log" &
    proxy_pid=$!
    pids+=("$proxy_pid")
    wait_port "$pport" conformance-proxy
    echo "== $run: suite -> proxy :$pport (writes -> $upstream, reads -> dpx $dpx_addr), namespace $namespace"
    # No tag, digests or tag list: the suite's pull and content-discovery
    # setups push their own content.
    (cd "$OUT/$run" && env OCI_ROOT_URL="http://127.0.0.1:$pport" OCI_NAMESPACE="$namespace" \
      OCI_TEST_PULL=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_DEBUG=1 OCI_HIDE_SKIPPED_WORKFLOWS=1 \
      OCI_REPORT_DIR="$OUT/$run" timeout 300 "$SUITE/conformance.test" -test.v -ginkgo.no-color \
      >out.txt 2>&1) || true
    if [ -f "$OUT/$run/junit.xml" ] && summarize "$OUT/$run/junit.xml" >"$OUT/$run/summary.txt"; then :; else
      status=1
      [ -f "$OUT/$run/junit.xml" ] || echo "no junit.xml (see $OUT/$run/out.txt)" >"$OUT/$run/summary.txt"
    fi
    grep -v '^pass ' "$OUT/$run/summary.txt" || true
    summary+=("$run: $(tail -n1 "$OUT/$run/summary.txt")")
    kill "$proxy_pid" 2>/dev/null || true
    wait "$proxy_pid" 2>/dev/null || true
    stop_dpx
  done
done

echo
printf '%s\n' "${summary[@]}"
echo "reports in $OUT/"
exit $status
