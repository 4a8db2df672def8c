#!/usr/bin/env python3
"""Print a STRATA_PROFILE table (runtime/README.md): one schedule's launches grouped by kernel,
slowest first.

  python3 tests/gpu/profile_table.py PROFILE.csv [SCHEDULE] [TOP]   (schedule default: cached)
"""
import csv
import os
import sys


def print_profile(path, schedule="cached", top=12):
    rows = [r for r in csv.DictReader(open(path)) if r["schedule"] == schedule and int(r["calls"]) > 0]
    if not rows:
        print(f"  profile ({os.path.basename(path)}, {schedule}): no launches timed", flush=True)
        return
    # every launch index runs once per run: the most common call count is the number of runs; a
    # launch timed a different number of times is parameter prep (once per weights change), left out
    counts = {}
    for r in rows:
        counts[int(r["calls"])] = counts.get(int(r["calls"]), 0) + 1
    runs = max(counts.items(), key=lambda kv: (kv[1], kv[0]))[0]
    by = {}
    for r in rows:
        if int(r["calls"]) != runs:
            continue
        k = by.setdefault(r["kernel"], [0.0, 0])
        k[0] += float(r["total_ms"]) / runs
        k[1] += 1
    total = sum(v[0] for v in by.values())
    print(f"  profile ({os.path.basename(path)}, {schedule}): {total * 1e3:.0f} us of launches per run over {runs} timed runs", flush=True)
    for name, (ms, n) in sorted(by.items(), key=lambda kv: -kv[1][0])[:top]:
        print(f"    {name:32s} x{n:4d}  {1e3 * ms:9.1f} us/run  {1e3 * ms / n:8.2f} us each  {100 * ms / total:5.1f}%", flush=True)
    # the same launches by kernel family (the generated name's prefix: gemm, ssd, attention, row, …)
    fam = {}
    for name, (ms, n) in by.items():
        f = fam.setdefault(name.rsplit("_", 1)[0], [0.0, 0])
        f[0] += ms
        f[1] += n
    print("    by family: " + ", ".join(f"{k} {1e3 * ms:.0f} us ({n})" for k, (ms, n) in sorted(fam.items(), key=lambda kv: -kv[1][0])), flush=True)


if __name__ == "__main__":
    print_profile(sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "cached", int(sys.argv[3]) if len(sys.argv) > 3 else 12)
