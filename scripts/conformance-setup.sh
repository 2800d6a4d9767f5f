#!/usr/bin/env bash
# Runs the OCI conformance suite (pull and content discovery) WITH its own
# setup through `dpx serve`: the suite's pushes go to a docker-registry
# upstream and its reads go through dpx (scripts/split-proxy.py), in mirror
# and prefix mode, cold and warm cache.
#
# Why a second runner next to scripts/conformance.sh: given an existing tag
# and digest (the read-only mode), the suite's referrers tests ask about one
# digest twice and expect 5 referrers the first time and 1 the second, whose
# digests come from content the suite makes with random bytes per run. Only
# the suite's own setup can make that content, so it must push it; dpx is
# read-only, so the pushes go around it to the upstream.
#
#   scripts/conformance-setup.sh
#   SUITE=/path/to/oci-conformance scripts/conformance-setup.sh
#
# Reports go to $OUT (default target/conformance-setup/<run>/). Exits non-zero
# when any run has failures. A development tool, not part of CI.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD
SUITE=${SUITE:-$root/../shared/tools/oci-conformance}
OUT=${OUT:-$root/target/conformance-setup}
[ -x "$SUITE/conformance.test" ] || { echo "no conformance suite at $SUITE (set SUITE=)" >&2; exit 2; }
for tool in docker-registry python3; do
  command -v "$tool" >/dev/null || { echo "conformance-setup.sh needs $tool" >&2; exit 2; }
done

cargo build --quiet --bin dpx
dpx=$root/target/debug/dpx

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
  until python3 -c "import socket; socket.create_connection(('127.0.0.1',$1),1)" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "nothing listens on port $1 ($2)" >&2; exit 1; }
    sleep 0.1
  done
}

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

# The suite pushes new content under the same tags in every run and reads it
# back at once: tags are revalidated on every request (a HEAD upstream), or the
# warm runs would rightly serve the previous run's digests within the TTL.
cat >"$work/config.toml" <<EOF
[cache]
tag_ttl = "0"

[registries."docker.io"]
url = "http://$upstream"

[registries."$upstream"]
url = "http://$upstream"
EOF

status=0
summary=()
for mode in mirror prefix; do
  case $mode in
    mirror) namespace=conformance/mirror strip= ;;
    prefix) namespace=$upstream/conformance/prefix strip=$upstream/ ;;
  esac
  for temp in cold warm; do
    run=$mode-$temp
    mkdir -p "$OUT/$run"
    dport=$(free_port)
    DPX_LOG=dpx=info "$dpx" --config "$work/config.toml" --cache-dir "$work/cache-$mode" \
      serve --listen "127.0.0.1:$dport" >/dev/null 2>"$OUT/$run/serve.log" &
    dpx_pid=$!
    pids+=("$dpx_pid")
    wait_port "$dport" "dpx serve"
    pport=$(free_port)
    python3 "$root/scripts/split-proxy.py" "$pport" "$upstream" "127.0.0.1:$dport" $strip \
      2>"$OUT/$run/proxy.log" &
    proxy_pid=$!
    pids+=("$proxy_pid")
    wait_port "$pport" split-proxy
    echo "== $run: suite -> split proxy :$pport -> writes $upstream, reads dpx :$dport; namespace $namespace"
    (cd "$OUT/$run" && env OCI_ROOT_URL="http://127.0.0.1:$pport" OCI_NAMESPACE="$namespace" \
      OCI_TEST_PULL=1 OCI_TEST_CONTENT_DISCOVERY=1 OCI_DEBUG=1 OCI_HIDE_SKIPPED_WORKFLOWS=1 \
      OCI_REPORT_DIR="$OUT/$run" timeout 300 "$SUITE/conformance.test" -test.v -ginkgo.no-color \
      >out.txt 2>&1) || true
    if python3 - "$OUT/$run/junit.xml" >"$OUT/$run/summary.txt" <<'PY'
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
    then :; else status=1; fi
    grep -v '^pass ' "$OUT/$run/summary.txt" || true
    summary+=("$run: $(tail -n1 "$OUT/$run/summary.txt")")
    kill "$proxy_pid" "$dpx_pid" 2>/dev/null || true
    wait "$proxy_pid" "$dpx_pid" 2>/dev/null || true
  done
done

echo
printf '%s\n' "${summary[@]}"
echo "reports in $OUT/"
exit $status
