#!/bin/sh
# Times `dpx cache ls`, `dpx cache du` and `dpx purge --max-size` (release
# build) on a synthetic cache of 12,000 blobs; prints the median of RUNS runs.
# usage: bench/cache-ops.sh [RUNS=5]
set -eu
runs=${1:-5}
cd "$(dirname "$0")/.."
cargo build --release -q
dpx=$PWD/target/release/dpx
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python3 bench/synthetic-cache.py "$work/cache"
du -sh "$work/cache" >&2
python3 - "$dpx" "$work" "$runs" <<'PY'
import os, shutil, statistics, subprocess, sys, time
dpx, work, runs = sys.argv[1], sys.argv[2], int(sys.argv[3])
cache = f"{work}/cache"
def timed(args, cache_dir):
    t = time.perf_counter()
    subprocess.run([dpx, "--config", "/dev/null", "--cache-dir", cache_dir, *args],
                   check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - t
blobs = subprocess.run([dpx, "--config", "/dev/null", "--cache-dir", cache, "--json", "cache", "du"],
                       check=True, capture_output=True, text=True).stdout
import json; u = json.loads(blobs); print(f"cache: {u['blobs']} blobs, {u['total']} bytes")
for name, args in [("cache ls", ["cache", "ls"]), ("cache du", ["cache", "du"])]:
    ts = [timed(args, cache) for _ in range(runs)]
    print(f"{name}: median {statistics.median(ts)*1000:.0f} ms ({', '.join(f'{t*1000:.0f}' for t in ts)})")
ts = []
for _ in range(runs):
    copy = f"{work}/copy"
    shutil.rmtree(copy, ignore_errors=True)
    shutil.copytree(cache, copy, copy_function=shutil.copy2)
    os.sync()  # the copy's writeback is not the purge's cost
    # Half the cache goes: about 6,000 removals.
    ts.append(timed(["purge", "--max-size", f"{u['total'] // 2}B"], copy))
print(f"purge --max-size (half): median {statistics.median(ts)*1000:.0f} ms ({', '.join(f'{t*1000:.0f}' for t in ts)})")
PY
