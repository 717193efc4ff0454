#!/usr/bin/env bash
# The whole release im-server under callgrind, driven by SIPp at a low rate: instructions per
# group session (or per list MESSAGE) of everything the process runs in user space — the
# endpoint, the transaction layer, the parser, tokio and the IO layer, tracing, the
# allocator, libc. Not part of the test suite: run by hand, results go to
# docs/performance.md ("Whole-process profile").
#
#   scripts/load/callgrind.sh [group|message|idle]   (default: group)
#
# group:   the load harness's group scenario (scripts/load/invite_pager.xml, one SIPp
#          originator, 3 SIPp member UASs answering scripts/load/uas_member.xml).
# message: MESSAGE to a list of N recipients (RFC 5365), one SIPp UAS answering every copy
#          (scripts/load/uas_message.xml).
# idle:    no calls: the server's own wake-ups over IDLE seconds.
#
# Counting: WARMUP calls first (lazy statics, first allocations, the tables' first growth),
# then LINGER seconds so their transactions linger out, then the counters are zeroed
# (`callgrind_control -z`), CALLS calls are made at RATE/s, LINGER seconds more let their
# transactions and timers end, and the profile is dumped (`callgrind_control -d`). So the
# dump holds CALLS whole calls, lingering included, plus the idle wake-ups of the window
# (measured apart by `idle`). Instruction counts do not depend on the machine's load.
#
# Environment (defaults in brackets):
#   IM_SERVER  im-server binary [target/release/im-server; build it with
#              CARGO_PROFILE_RELEASE_DEBUG=line-tables-only cargo build --release -p im-server
#              to get source lines]
#   RATE       calls/s [5]       CALLS   counted calls [150]   WARMUP  calls before [20]
#   LINGER     seconds [36]      N       recipients (message) [10]   IDLE seconds (idle) [20]
#   WORKERS    the server's --workers [1]
#   NATIVE     1: no valgrind; the server's user and system CPU per call over the same
#              window instead (/proc/PID/stat) [0]
#   OUT        folder for the profile and SIPp's files [a new folder under /tmp]
#
# Every address is 127.0.0.1. Read the dump with
#   callgrind_annotate --inclusive=yes $OUT/callgrind.out.PID.1
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
root="$(cd "$here/../.." && pwd)"
MODE="${1:-group}"
RATE="${RATE:-5}"
CALLS="${CALLS:-150}"
WARMUP="${WARMUP:-20}"
LINGER="${LINGER:-36}"
N="${N:-10}"
IDLE="${IDLE:-20}"
WORKERS="${WORKERS:-1}"
NATIVE="${NATIVE:-0}"
IM_SERVER="${IM_SERVER:-$root/target/release/im-server}"
OUT="${OUT:-$(mktemp -d /tmp/imspec-callgrind.XXXXXX)}"
mkdir -p "$OUT"

die() { echo "callgrind.sh: $*" >&2; exit 1; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"
command -v callgrind_control >/dev/null || die "valgrind not found: apt-get install -y valgrind"
[ -x "$IM_SERVER" ] || die "no $IM_SERVER: build it first (see the header of this script)"

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT INT TERM


IM_PORT=$(free_port)
IM_MSRP=$(free_port)
# No overload shedding: under valgrind every input waits longer than the 50 ms default.
flags=(--workers "$WORKERS" --sip "127.0.0.1:$IM_PORT" --msrp "127.0.0.1:$IM_MSRP" --log warn
    --no-auth --allow-external-recipients --overload-delay 0s)
target=""
originator=""
uas=()
case "$MODE" in
group)
    mkdir -p "$OUT/groups"
    member_uris=()
    for i in 0 1 2; do
        port=$(free_port)
        member_uris+=("sip:member$i@127.0.0.1:$port")
        uas+=("$here/uas_member.xml:$port")
    done
    group_document "$OUT/groups/load.xml" "${member_uris[@]}"
    flags+=(--groups "$OUT/groups")
    target=sip:load@example.com
    originator="$here/invite_pager.xml"
    ;;
message)
    port=$(free_port)
    uas+=("$here/uas_message.xml:$port")
    # The load harness's list MESSAGE, answered 202 by the server.
    message_scenario "$OUT/message.xml" "$N" "$port" 202
    target=sip:conference-factory@example.com
    originator="$OUT/message.xml"
    ;;
idle) ;;
*) die "unknown mode '$MODE' (group, message, idle)" ;;
esac

if [ "$NATIVE" = 1 ]; then
    "$IM_SERVER" "${flags[@]}" >"$OUT/im-server.log" 2>&1 &
else
    valgrind --tool=callgrind --callgrind-out-file="$OUT/callgrind.out.%p" \
        "$IM_SERVER" "${flags[@]}" >"$OUT/im-server.log" 2>&1 &
fi
IM_PID=$!
pids+=("$IM_PID")
echo "valgrind --tool=callgrind $IM_SERVER ${flags[*]} (NATIVE=$NATIVE)" >"$OUT/commands.txt"

# NATIVE=1: the server's user and system CPU ticks (all threads, /proc/PID/stat) in place
# of the profile's counters, and its total run time to the nanosecond (the scheduler's count
# of every live thread, /proc/PID/task/*/schedstat; the ticks are 10 ms each and only
# sampled into user and system).
ticks() {
    sed 's/.*) //' "/proc/$IM_PID/stat" | awk '{printf "%s %s ", $12, $13}'
    cat /proc/"$IM_PID"/task/*/schedstat | awk '{t += $1} END {print t + 0}'
}
zero() {
    if [ "$NATIVE" = 1 ]; then
        T0=$(ticks)
        echo "RSS at zero: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$IM_PID/status")"
    else
        callgrind_control -z "$IM_PID" >/dev/null
    fi
}
dump() { # units
    if [ "$NATIVE" = 1 ]; then
        set -- "$1" $T0 $(ticks)
        awk -v n="$1" -v u0="$2" -v s0="$3" -v r0="$4" -v u1="$5" -v s1="$6" -v r1="$7" \
            -v hz="$(getconf CLK_TCK)" \
            'BEGIN { printf "user %.1f us, system %.1f us per unit (%d + %d ticks); run time %.1f us per unit\n",
                     1e6 * (u1 - u0) / hz / n, 1e6 * (s1 - s0) / hz / n, u1 - u0, s1 - s0,
                     (r1 - r0) / 1e3 / n }'
        echo "RSS at dump: $(awk '/^VmRSS/ {print $2, $3}' "/proc/$IM_PID/status")"
    else
        callgrind_control -d "$IM_PID" >/dev/null
    fi
}

# Until the server answers an OPTIONS (valgrind starts slowly): at most 60 s.
up=0
for _ in $(seq 1 120); do
    if sipp -sf "$here/options.xml" -key target "sip:probe@127.0.0.1:$IM_PORT" \
        -key from sip:probe@example.com -m 1 -i 127.0.0.1 -p "$(free_port)" \
        -recv_timeout 1000 -timeout 3s -nostdin "127.0.0.1:$IM_PORT" >/dev/null 2>&1; then
        up=1
        break
    fi
    sleep 0.5
done
[ "$up" = 1 ] || die "im-server did not answer on 127.0.0.1:$IM_PORT"

i=0
for u in "${uas[@]}"; do
    mkdir -p "$OUT/uas$i"
    (cd "$OUT/uas$i" && exec timeout $((LINGER * 3 + (WARMUP + CALLS) / RATE + 120)) sipp \
        -sf "${u%:*}" -i 127.0.0.1 -p "${u##*:}" -t u1 -recv_timeout 600000 -nostdin \
        -trace_stat -stf stat.csv -fd 1 -trace_err >sipp.out 2>sipp.err) &
    pids+=("$!")
    i=$((i + 1))
done
sleep 1

originate() { # dir calls
    mkdir -p "$1"
    (cd "$1" && timeout $(($2 / RATE + 60)) sipp -sf "$originator" \
        -key target "$target" -key from sip:loader@example.com \
        -i 127.0.0.1 -p "$(free_port)" -t u1 -r "$RATE" -m "$2" -timeout "$(($2 / RATE + 45))s" \
        -recv_timeout 20000 -nostdin -trace_stat -stf stat.csv -fd 1 -trace_err \
        "127.0.0.1:$IM_PORT" >sipp.out 2>sipp.err) || echo "originator in $1 exited $?"
    python3 - "$1/stat.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, l = rows[0], rows[-1]
c = lambda n: l[h.index(n)]
print(f"  {c('SuccessfulCall(C)')} ok, {c('FailedCall(C)')} failed of {c('TotalCallCreated')}")
EOF
}

if [ "$MODE" = idle ]; then
    sleep "$LINGER"
    zero
    sleep "$IDLE"
    dump "$IDLE"
    echo "idle: $IDLE s counted"
else
    echo "warm-up: $WARMUP calls"
    originate "$OUT/warmup" "$WARMUP"
    sleep "$LINGER"
    zero
    t0=$(date +%s.%N)
    echo "counted: $CALLS calls at $RATE/s"
    originate "$OUT/run" "$CALLS"
    sleep "$LINGER"
    dump "$CALLS"
    t1=$(date +%s.%N)
    awk -v a="$t0" -v b="$t1" 'BEGIN { printf "counted window: %.1f s\n", b - a }'
fi
[ "$NATIVE" = 1 ] && exit 0
sleep 1
dump=$(ls "$OUT"/callgrind.out.*.1 | head -1)
echo "profile: $dump"
grep -m1 '^summary:\|^totals:' "$dump" || true
echo "read with: callgrind_annotate --inclusive=yes $dump"
