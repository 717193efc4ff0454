#!/usr/bin/env bash
# jemalloc's per-size-class statistics of a running im-server, and where its pages go.
#
#   scripts/load/jemalloc-bins.sh PID LOG OUT.json [flush]
#
# Asks the server (through gdb, which pauses it for a moment) to print jemalloc's statistics
# in JSON (`malloc_stats_print(.., "J")`, written to the server's stderr, i.e. LOG), keeps
# them in OUT.json and prints the size classes that hold the most pages beyond their live
# blocks: for each, the slabs (non-full ones in brackets), KiB of slabs and KiB of live
# blocks. Slabs that hold a few long-lived blocks each are what keeps pages from being
# purged after a peak (docs/performance.md, "What kept jemalloc's 640-byte class").
# With `flush`, every thread's cache is emptied first (`thread.tcache.flush` on each thread,
# also through gdb): the blocks that stay are held by the program, not by the caches.
# Needs gdb and ptrace rights over PID; the binary's symbols (`_rjem_malloc_stats_print`).
set -euo pipefail
[ $# -eq 3 ] || [ $# -eq 4 ] || { echo "usage: $0 PID LOG OUT.json [flush]" >&2; exit 2; }
pid="$1" log="$2" out="$3"
if [ "${4:-}" = flush ]; then
    gdb -p "$pid" -batch -ex 'thread apply all call (int)_rjem_mallctl("thread.tcache.flush",0,0,0,0)' \
        >/dev/null 2>&1 || { echo "$0: gdb could not flush the caches of $pid" >&2; exit 1; }
fi
before=$(stat -c %s "$log")
gdb -p "$pid" -batch -ex 'call (void)_rjem_malloc_stats_print(0,0,"J")' >/dev/null 2>&1 ||
    { echo "$0: gdb could not call into $pid" >&2; exit 1; }
# The print is synchronous, but the log may be written through a buffer: wait for the JSON
# to be complete.
for _ in $(seq 1 20); do
    tail -c +$((before + 1)) "$log" >"$out"
    python3 -c 'import json,sys; json.load(open(sys.argv[1]))' "$out" 2>/dev/null && break
    sleep 0.2
done
python3 - "$out" <<'PY'
import json, sys
j = json.load(open(sys.argv[1]))["jemalloc"]
bins = j["arenas"]["bin"]
merged = j["stats.arenas"]["merged"]["bins"]
rows = []
for b, m in zip(bins, merged):
    slab_kib = m["curslabs"] * b["slab_size"] / 1024
    used_kib = m["curregs"] * b["size"] / 1024
    rows.append((slab_kib - used_kib, b["size"], m["curslabs"], m["nonfull_slabs"], slab_kib, used_kib, m["curregs"]))
rows.sort(reverse=True)
s = j["stats"]
print(f"allocated {s['allocated'] // 1024} KiB, active {s['active'] // 1024} KiB, "
      f"resident {s['resident'] // 1024} KiB, metadata {s['metadata'] // 1024} KiB")
print("class  slabs (non-full)  KiB of slabs / KiB live  live blocks")
for gap, size, slabs, nonfull, slab_kib, used_kib, regs in rows[:8]:
    print(f"{size:5}  {slabs:5} ({nonfull:5})  {slab_kib:9.0f} / {used_kib:6.0f}  {regs:6}")
PY
