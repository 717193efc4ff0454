#!/usr/bin/env bash
# SIPp load runs against the release im-server, with Kamailio as the baseline.
# Not part of the test suite: run by hand, results go to docs/performance.md.
#
#   scripts/load/run.sh [options|kamailio|invite|compare|group|overload|soak|floor|all]... (default: all)
#
# `compare` is the side-by-side run (issue 11 item 5), one call on this machine:
#   * Kamailio tm (scripts/load/kamailio_tm.cfg) answering SIPp INVITE -> 200 -> ACK -> BYE
#     dialogs, and answering MESSAGE;
#   * im-server, for each worker count in WORKERS, with the group scenario (SIPp originator
#     + 3 SIPp member UASs, pre-defined group of 3: 4 dialogs per session), and a MESSAGE
#     to a list of 3 and of 10 recipients (RFC 5365; one SIPp UAS answers every copy);
# and prints for each: calls/s held with 0 failures, server CPU per call and per dialog
# (per transaction for MESSAGE) from /proc/PID/stat, p99 of INVITE->200 (MESSAGE->final),
# the ratio to Kamailio, and other_cpu_s: CPU used by everything else on the machine
# (every process outside this script's tree, from /proc/PID/stat), which marks the run VOID when it
# exceeds OTHER_MAX of the run's wall time (the figures then measure contention, not us).
# Each row also gives the server's context switches per call (voluntary + involuntary, all
# its threads, from /proc/PID/task/*/status) and, for the group scenario, the server's own
# p99 of initial INVITE arrival -> final response sent (its /metrics histogram
# imserver_invite_final_seconds, so an upper bucket bound: "srv<=N"), next to SIPp's p99.
# `group` is the group-scenario ramp of `compare` alone (for each worker count in WORKERS).
# `floor` measures what the machine itself costs per datagram: scripts/load/floor.c, a
# stateless single-threaded UDP responder with no SIP logic, answering SIPp's dialog and
# MESSAGE scenarios, then im-server's group and MESSAGE runs in the same call (run_floor).
# Every row gives the datagrams per call at the server (the machine's UDP OutDatagrams over
# the run, /proc/net/snmp) and the server CPU per datagram.
#
# Environment (defaults in brackets):
#   DURATION      seconds per run [15]; every SIPp run is also bounded by a call count (-m)
#                 and a global -timeout, and the whole script by `timeout`
#   RATE          fixed OPTIONS rate, calls/s [1000]
#   MAX_LIMIT     simultaneous calls in the max-rate OPTIONS runs (closed loop) [50]
#   INVITE_RATE   pager-mode group INVITE calls/s [20]
#   OUT           folder for logs and CSVs [a new folder under /tmp]
#   IM_SERVER     im-server binary [target/release/im-server, built when missing]
#   IM_FLAGS      more im-server flags, word-split, after the harness's own (e.g.
#                 "--overload-delay 20ms") [none]
#   WORKERS       compare: im-server worker counts to run, space separated ["1 2"]
#   KAM_RATE      compare: Kamailio dialogs/s and MESSAGEs/s ["500 1000 2000"]
#   GROUP_RATE    compare: im-server group sessions/s ["50 100 200 400"]
#   MSG_RATE      compare: im-server MESSAGEs/s to each list ["100 200 400 800 1600"]
#                 Each rate list is a ramp: each rate runs DURATION s, lowest first, and
#                 the ramp stops at the first rate not held (a failed call, fewer calls
#                 done than sent, or under 90 % of the rate); the table names the highest
#                 rate held. Each im-server scenario gets a fresh server.
#   FLOOR_LOOPS   floor: the responder's loops, "epoll" (epoll_wait + recvmmsg/sendmmsg, an
#                 event-driven server's) and/or "blocking" (recvfrom/sendto) ["epoll blocking"]
#   FLOOR_RATE    floor: dialogs/s ["20 200 1000 5000"]
#   FLOOR_MSG_RATE floor: MESSAGEs/s ["1600 8000 16000"]
#   SOAK_DURATION soak: seconds at 80 % of the rate held [600]
#   SOAK_RATE     soak: the rate taken as held, skipping the ramp [found by the ramp]
#   SOAK_SETTLE   soak: idle seconds before the start and end samples [90]
#   SOAK_BINS     soak: when 1, jemalloc's per-size-class statistics are dumped with the start
#                 and end samples (scripts/load/jemalloc-bins.sh, through gdb) into
#                 soak/jstats-start.json and jstats-end.json, and once more after the end
#                 sample with every thread's cache emptied (jstats-end-flushed.json), with a
#                 summary in summary.txt [0]
#   OTHER_MAX     compare: other_cpu_s / wall seconds above which a run is VOID [0.10]
#   SERVER_NICE   niceness of the server under test (im-server and Kamailio alike) [0]. With
#                 SIPp on the same cores, a saturated machine delays SIPp itself and its
#                 p99 then measures its own starvation; a positive value (e.g. 10) gives
#                 SIPp the CPU first, as a separate load-generator machine would have it,
#                 so overload shows up in the server, which must shed it.
#   SIPP_BUFF     socket buffer size of every SIPp (`-buff_size`, octets) [4194304]. SIPp's
#                 own default (65,535) overflows in a burst of answers; each datagram lost
#                 there costs its call a 500 ms retransmission that SIPp's p99 then counts
#                 against the server. Capped by net.core.rmem_max.
#   SERVER_CPU_QUOTA  cores the server under test may use (im-server and Kamailio alike),
#                 e.g. 0.5 [unset: no cap]: a CFS bandwidth limit in 10 ms periods (cgroup v1
#                 `cpu` controller, /sys/fs/cgroup/cpu/imspec-load.PID; root). Where
#                 SERVER_NICE only lets SIPp go first, this is a hard cap: the server never
#                 takes the CPU the SIPps need, as on a separate load-generator machine, so
#                 that at twice the rate the capped server holds (`overload`) SIPp's p99 is
#                 the server's latency and not SIPp's own starvation on the shared cores.
#
# Every address is 127.0.0.1; ports are picked free at start. Each server the script starts
# is stopped by its own pid when the script ends (also on error or Ctrl-C).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
# shellcheck source=common.sh
. "$here/common.sh"
root="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-15}"
RATE="${RATE:-1000}"
MAX_LIMIT="${MAX_LIMIT:-50}"
INVITE_RATE="${INVITE_RATE:-20}"
WORKERS="${WORKERS:-1 2}"
KAM_RATE="${KAM_RATE-500 1000 2000}"
GROUP_RATE="${GROUP_RATE-50 100 200 400}"
MSG_RATE="${MSG_RATE-100 200 400 800 1600}"
FLOOR_LOOPS="${FLOOR_LOOPS-epoll blocking}"
FLOOR_RATE="${FLOOR_RATE:-20 200 1000 5000}"
FLOOR_MSG_RATE="${FLOOR_MSG_RATE:-1600 8000 16000}"
OTHER_MAX="${OTHER_MAX:-0.10}"
SERVER_NICE="${SERVER_NICE:-0}"
SERVER_CPU_QUOTA="${SERVER_CPU_QUOTA:-}"
SIPP_BUFF="${SIPP_BUFF:-4194304}"
OUT="${OUT:-$(mktemp -d /tmp/imspec-load.XXXXXX)}"
IM_SERVER="${IM_SERVER:-$root/target/release/im-server}"
IM_FLAGS="${IM_FLAGS:-}"
mkdir -p "$OUT"

die() { echo "run.sh: $*" >&2; exit 1; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"

pids=()
# The cgroup of SERVER_CPU_QUOTA, made by the first cap_cpu.
CG=""
cleanup() {
    local p i
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
    # A cgroup is removed once its last process has gone (Kamailio's children end after
    # their parent).
    if [ -n "$CG" ]; then
        for i in $(seq 1 20); do
            rmdir "$CG" 2>/dev/null && break
            sleep 0.25
        done
    fi
}
trap cleanup EXIT INT TERM

# Puts processes (each with all its threads) under the SERVER_CPU_QUOTA cap; nothing when
# it is unset.
cap_cpu() { # pids...
    local p
    [ -n "$SERVER_CPU_QUOTA" ] || return 0
    if [ -z "$CG" ]; then
        CG="/sys/fs/cgroup/cpu/imspec-load.$$"
        mkdir -p "$CG" 2>/dev/null || die "SERVER_CPU_QUOTA: cannot create $CG (the cgroup v1 cpu controller, as root)"
        echo 10000 >"$CG/cpu.cfs_period_us"
        awk -v q="$SERVER_CPU_QUOTA" 'BEGIN { printf "%d\n", q * 10000 }' >"$CG/cpu.cfs_quota_us" ||
            die "SERVER_CPU_QUOTA=$SERVER_CPU_QUOTA: not a number of cores the kernel takes"
    fi
    for p in "$@"; do
        echo "$p" >"$CG/cgroup.procs" || die "cannot move $p into $CG"
    done
}

# free_port, message_scenario and group_document are in common.sh.

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# UDP datagrams sent so far by the whole machine (/proc/net/snmp, Udp: OutDatagrams).
udp_out() { awk '$1 == "Udp:" && $2 ~ /^[0-9]+$/ {print $5}' /proc/net/snmp; }

# CPU seconds (user+system) used so far by processes, all their live threads: the
# scheduler's own count (/proc/PID/task/TID/schedstat, first field, nanoseconds of run time),
# which is what /proc/PID/stat's utime + stime add up to but rounded to clock ticks (10 ms):
# at 20 calls/s a cheap server spends a few ticks in a whole run, so the ticks could not
# tell 20 µs per call from 40. A thread that ends during a run takes its time with it
# (the servers measured here keep theirs). Falls back to the ticks where schedstat is absent.
cpu_seconds() {
    local p t ns total_ns=0 ticks=0 f
    for p in "$@"; do
        [ -d "/proc/$p/task" ] || continue
        if [ -r "/proc/$p/task/$p/schedstat" ]; then
            for t in /proc/"$p"/task/*/schedstat; do
                read -r ns f f <"$t" 2>/dev/null || continue
                total_ns=$((total_ns + ns))
            done
        else
            # Fields 14 and 15 (utime, stime) come after the ")" that ends the command name.
            # A process may end between the test and the read: it then counts 0.
            t=$(sed 's/.*) //' "/proc/$p/stat" 2>/dev/null | awk '{print $12 + $13}')
            ticks=$((ticks + ${t:-0}))
        fi
    done
    awk -v n="$total_ns" -v t="$ticks" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.6f", n / 1e9 + t / hz }'
}

# Context switches so far of processes, all threads: "voluntary involuntary".
ctx_switches() { # pids...
    local p
    for p in "$@"; do cat /proc/"$p"/task/*/status 2>/dev/null || true; done |
        awk '/^voluntary_ctxt/ {v += $2} /^nonvoluntary_ctxt/ {n += $2} END {print v + 0, n + 0}'
}

# The server's /metrics text into a file (empty when IM_METRICS is not set or unreachable).
scrape() { # file
    : >"$1"
    [ -n "${IM_METRICS:-}" ] && curl -s -m 5 "$IM_METRICS" >"$1" 2>/dev/null || true
}

# Pids of a process and its direct children (kamailio forks its workers).
family() {
    local p="$1"
    echo "$p"
    ps -o pid= --ppid "$p" 2>/dev/null | tr -d ' ' || true
}

wait_udp() { # host port: until something answers a UDP OPTIONS, at most 10 s
    local i
    for i in $(seq 1 50); do
        if sipp -sf "$here/options.xml" -key target "sip:probe@$1:$2" -key from sip:probe@example.com \
            -m 1 -i 127.0.0.1 -p "$(free_port)" -recv_timeout 200 -timeout 2s -nostdin \
            "$1:$2" >/dev/null 2>&1; then
            return 0
        fi
        sleep 0.2
    done
    return 1
}

# Prints one summary line from SIPp's -trace_stat CSV and -trace_rtt CSV.
summarize() { # label stat.csv rtt.csv cpu_s loadavg_before loadavg_after
    python3 - "$@" <<'EOF'
import csv, sys
label, stat, rtt, cpu, la0, la1 = sys.argv[1:7]
rows = list(csv.reader(open(stat), delimiter=';'))
head, last = rows[0], rows[-1]
col = lambda name: last[head.index(name)]
# StartTime and CurrentTime read "date<TAB>time<TAB>epoch seconds"; ElapsedTime has only
# whole seconds, so the elapsed time is taken from the epochs.
epoch = lambda name: float(col(name).split('\t')[-1])
elapsed = epoch('CurrentTime') - epoch('StartTime')
ok = int(col('SuccessfulCall(C)'))
failed = int(col('FailedCall(C)'))
created = int(col('TotalCallCreated'))
def ms(hms):  # "HH:MM:SS:usec"
    h, m, s, us = (int(x) for x in hms.split(':'))
    return (h * 3600 + m * 60 + s) * 1e3 + us / 1e3
mean = ms(col('ResponseTime1(C)'))
# -trace_rtt rows: Date_ms;response_time_ms;rtd_no
times = []
try:
    for r in csv.reader(open(rtt), delimiter=';'):
        if len(r) >= 3 and r[2].strip() == '1':
            try:
                times.append(float(r[1]))
            except ValueError:
                pass
except FileNotFoundError:
    pass
times.sort()
pct = lambda q: times[min(len(times) - 1, int(q * len(times)))] if times else float('nan')
cpu = float(cpu)
per_s = [r[head.index('SuccessfulCall(P)')] for r in rows[1:]]
print(f"{label}: {ok} ok, {failed} failed of {created} in {elapsed:.1f} s = {ok / elapsed:.0f} calls/s; "
      f"rtd1 ms mean {mean:.2f} p50 {pct(0.5):.0f} p90 {pct(0.9):.0f} p99 {pct(0.99):.0f} max {pct(1.0):.0f} (n={len(times)}); "
      f"server CPU {cpu:.2f} s = {1000 * cpu / max(ok, 1):.3f} ms/call; load avg {la0} -> {la1}")
print(f"  successful calls per 1 s period: {' '.join(per_s)}")
EOF
}

# One OPTIONS run: name target_host target_port rate limit calls server_pids...
options_run() { # name host port rate limit calls timeout_s server_pids...
    local name="$1" host="$2" port="$3" rate="$4" limit="$5" calls="$6" tmo="$7"
    shift 7
    local dir="$OUT/$name" la0 la1 c0 c1 rc=0
    mkdir -p "$dir"
    la0=$(loadavg)
    c0=$(cpu_seconds "$@")
    # -timeout bounds the run in time, -m in count; -l bounds the calls in flight.
    (cd "$dir" && timeout $((tmo + 30)) sipp -buff_size "$SIPP_BUFF" -sf "$here/options.xml" \
        -key target "sip:load@$host:$port" -key from sip:loader@example.com \
        -i 127.0.0.1 -p "$(free_port)" -t u1 \
        -r "$rate" -l "$limit" -m "$calls" -timeout "${tmo}s" \
        -recv_timeout 5000 -max_retrans 3 -nostdin \
        -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_err \
        "$host:$port" >sipp.out 2>sipp.err) || rc=$?
    c1=$(cpu_seconds "$@")
    la1=$(loadavg)
    echo "    sipp -sf scripts/load/options.xml -r $rate -l $limit -m $calls -timeout ${tmo}s ... $host:$port (exit $rc)" >>"$OUT/commands.txt"
    summarize "$name" "$dir/stat.csv" "$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1)" \
        "$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" "$la0" "$la1" | tee -a "$OUT/summary.txt"
}

start_im_server() { # extra flags...
    if [ ! -x "$IM_SERVER" ]; then
        (cd "$root" && cargo build --release -p im-server) || die "cannot build im-server"
    fi
    IM_PORT=$(free_port)
    IM_MSRP=$(free_port)
    # Without authentication and with external recipients allowed: the load runs measure the
    # IM procedure against Kamailio tm answering unauthenticated dialogs, and the members are
    # SIPp UASs named by IP address (the server authenticates by default since issue 14).
    # shellcheck disable=SC2086
    nice -n "$SERVER_NICE" "$IM_SERVER" --sip "127.0.0.1:$IM_PORT" --msrp "127.0.0.1:$IM_MSRP" --log warn \
        --no-auth --allow-external-recipients "$@" $IM_FLAGS \
        >"$OUT/im-server.$IM_PORT.log" 2>&1 &
    IM_PID=$!
    pids+=("$IM_PID")
    cap_cpu "$IM_PID"
    wait_udp 127.0.0.1 "$IM_PORT" || die "im-server did not answer on 127.0.0.1:$IM_PORT"
}

stop() { # pid
    kill "$1" 2>/dev/null || true
    wait "$1" 2>/dev/null || true
}

run_options() {
    start_im_server
    echo "im-server $IM_SERVER --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn" >>"$OUT/commands.txt"
    options_run im-server-options-fixed 127.0.0.1 "$IM_PORT" "$RATE" $((RATE / 2 + 10)) $((RATE * DURATION)) $((DURATION + 10)) "$IM_PID"
    stop "$IM_PID"
    # A fresh server: the fixed run's server transactions live on for Timer J (32 s) and
    # would still hold memory and timer entries during the max run.
    start_im_server
    echo "im-server $IM_SERVER --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn" >>"$OUT/commands.txt"
    options_run im-server-options-max 127.0.0.1 "$IM_PORT" 100000 "$MAX_LIMIT" 2000000 "$DURATION" "$IM_PID"
    stop "$IM_PID"
}

run_kamailio() {
    command -v kamailio >/dev/null || die "kamailio not found: apt-get install -y kamailio"
    local port
    port=$(free_port)
    nice -n "$SERVER_NICE" kamailio -f "$here/kamailio.cfg" -l "udp:127.0.0.1:$port" -DD -E -m 64 -M 8 \
        >"$OUT/kamailio.log" 2>&1 &
    local kpid=$!
    pids+=("$kpid")
    wait_udp 127.0.0.1 "$port" || die "kamailio did not answer on 127.0.0.1:$port"
    # shellcheck disable=SC2046
    cap_cpu $(family "$kpid")
    echo "kamailio -f scripts/load/kamailio.cfg -l udp:127.0.0.1:$port -DD -E -m 64 -M 8" >>"$OUT/commands.txt"
    # shellcheck disable=SC2046
    options_run kamailio-options-fixed 127.0.0.1 "$port" "$RATE" $((RATE / 2 + 10)) $((RATE * DURATION)) $((DURATION + 10)) $(family "$kpid")
    # shellcheck disable=SC2046
    options_run kamailio-options-max 127.0.0.1 "$port" 100000 "$MAX_LIMIT" 2000000 "$DURATION" $(family "$kpid")
    stop "$kpid"
}

run_invite() {
    local calls=$((INVITE_RATE * DURATION)) dir="$OUT/im-server-invite3" i uas=()
    mkdir -p "$dir/groups"
    local ports=() members=()
    for i in 0 1 2; do
        ports+=("$(free_port)")
        members+=("sip:member$i@127.0.0.1:${ports[$i]}")
    done
    group_document "$dir/groups/load.xml" "${members[@]}"
    start_im_server --groups "$dir/groups"
    echo "im-server $IM_SERVER --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn --groups $dir/groups" >>"$OUT/commands.txt"
    for i in 0 1 2; do
        mkdir -p "$dir/uas$i"
        (cd "$dir/uas$i" && exec timeout $((DURATION + 60)) sipp -buff_size "$SIPP_BUFF" -sf "$here/uas_member.xml" \
            -i 127.0.0.1 -p "${ports[$i]}" -t u1 -m "$calls" -timeout "$((DURATION + 45))s" \
            -recv_timeout 40000 -nostdin -trace_stat -stf stat.csv -fd 1 -trace_err \
            >sipp.out 2>sipp.err) &
        uas+=("$!")
        pids+=("$!")
    done
    sleep 0.5
    local la0 la1 c0 c1 rc=0
    la0=$(loadavg)
    c0=$(cpu_seconds "$IM_PID")
    (cd "$dir" && timeout $((DURATION + 60)) sipp -buff_size "$SIPP_BUFF" -sf "$here/invite_pager.xml" \
        -key target sip:load@example.com -key from sip:loader@example.com \
        -i 127.0.0.1 -p "$(free_port)" -t u1 \
        -r "$INVITE_RATE" -l $((INVITE_RATE * 5)) -m "$calls" -timeout "$((DURATION + 40))s" \
        -recv_timeout 10000 -nostdin \
        -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_err \
        "127.0.0.1:$IM_PORT" >sipp.out 2>sipp.err) || rc=$?
    c1=$(cpu_seconds "$IM_PID")
    la1=$(loadavg)
    echo "    sipp -sf scripts/load/invite_pager.xml -r $INVITE_RATE -l $((INVITE_RATE * 5)) -m $calls ... (exit $rc); 3 x sipp -sf scripts/load/uas_member.xml -m $calls" >>"$OUT/commands.txt"
    summarize im-server-invite3 "$dir/stat.csv" "$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1)" \
        "$(awk -v a="$c0" -v b="$c1" 'BEGIN{print b-a}')" "$la0" "$la1" | tee -a "$OUT/summary.txt"
    # The members end by themselves once they have seen every call (or at their -timeout).
    for i in 0 1 2; do
        local urc=0
        wait "${uas[$i]}" || urc=$?
        python3 - "$dir/uas$i/stat.csv" "$i" "$urc" <<'EOF' | tee -a "$OUT/summary.txt"
import csv, sys
rows = list(csv.reader(open(sys.argv[1]), delimiter=';'))
h, l = rows[0], rows[-1]
c = lambda n: l[h.index(n)]
print(f"  member{sys.argv[2]} (exit {sys.argv[3]}): {c('SuccessfulCall(C)')} ok, {c('FailedCall(C)')} failed of {c('TotalCallCreated')} INVITEs received")
EOF
    done
    stop "$IM_PID"
}

# ---- compare: Kamailio tm vs im-server, side by side -------------------------------------

# A snapshot of every process's CPU: "pid ppid starttime ticks" per line, where ticks is
# utime + stime + cutime + cstime (the last two hold the children a process has reaped, so a
# short-lived process that started and ended between two snapshots still shows up in its
# parent). The scheduler's per-process accounting is exact; /proc/stat's machine-wide busy
# time is sampled at the tick, and bursty SIP loads sleep through most ticks (it read less
# busy time than the server alone used), so "other" is summed from processes instead.
proc_snapshot() { # file
    python3 - "$1" <<'EOF2'
import os, sys
out = []
for d in os.listdir('/proc'):
    if not d.isdigit():
        continue
    try:
        s = open(f'/proc/{d}/stat').read()
    except OSError:
        continue
    f = s[s.rindex(')') + 2:].split()
    # After the name: state ppid ... utime(11) stime(12) cutime(13) cstime(14) ... starttime(19)
    out.append(f"{d} {f[1]} {f[19]} {int(f[11]) + int(f[12]) + int(f[13]) + int(f[14])}")
open(sys.argv[1], 'w').write('\n'.join(out) + '\n')
EOF2
}

# CPU seconds of the children this shell has reaped, from a file holding the output of bash's
# `times` (second line). `times` must run in this shell, not in a $(...) subshell, whose
# own reaped children are none. A SIPp run in the foreground is reaped when it ends, so its
# whole CPU shows up here.
reaped_seconds() { # times_output_file
    awk 'NR == 2 {
        t = 0
        for (i = 1; i <= 2; i++) { split($i, a, "m"); sub("s", "", a[2]); t += a[1] * 60 + a[2] }
        printf "%.2f", t
    }' "$1"
}

# message_scenario (common.sh): the final answer im-server gives is 202 (exploded),
# Kamailio's 200.

# Starts a UAS SIPp in the background; sets UAS_PID. It may answer twice the calls it is
# meant to get, so it is still alive (and its CPU readable) when the originator ends; the
# caller stops it. `seconds` is how long the originator runs may last in all (default
# DURATION): a UAS that exits early leaves the server's legs to time out (timer B, 32 s),
# which fills max_sessions and turns every later call into a 503.
start_uas() { # dir scenario port calls [seconds]
    local alive="${5:-$DURATION}"
    mkdir -p "$1"
    (cd "$1" && exec timeout $((alive + 90)) sipp -buff_size "$SIPP_BUFF" -sf "$2" \
        -i 127.0.0.1 -p "$3" -t u1 -m $(($4 * 2)) -timeout "$((alive + 75))s" \
        -recv_timeout 60000 -nostdin -trace_stat -stf stat.csv -fd 1 -trace_err \
        >sipp.out 2>sipp.err) &
    UAS_PID=$!
    pids+=("$UAS_PID")
}

# One measured originator run. Prints the summary line and appends a row to results.tsv.
#   label kind(dialog|message) per_call(dialogs or transactions per call) recipients rate
#   "server pids" "uas pids" dir scenario target_uri dest_host:port
compare_run() {
    local label="$1" kind="$2" per_call="$3" recips="$4" rate="$5" servers="$6" uas="$7"
    local dir="$8" scenario="$9" target="${10}" dest="${11}"
    local calls=$((rate * DURATION)) rc=0 la0 la1 b0 b1 s0 s1 u0 u1 r0 r1 w0 w1 fam="" p x0 x1 d0 d1
    mkdir -p "$dir"
    for p in $uas; do fam+=" $(family "$p" | tr '\n' ' ')"; done
    la0=$(loadavg); w0=$(date +%s.%N); proc_snapshot "$OUT/.procs0"
    # shellcheck disable=SC2086
    times >"$OUT/.times0"
    s0=$(cpu_seconds $servers); u0=$(cpu_seconds $fam); r0=$(reaped_seconds "$OUT/.times0")
    # shellcheck disable=SC2086
    x0=$(ctx_switches $servers); scrape "$OUT/.metrics0"; d0=$(udp_out)
    (cd "$dir" && timeout $((DURATION + 60)) sipp -buff_size "$SIPP_BUFF" -sf "$scenario" \
        -key target "$target" -key from sip:loader@example.com \
        -i 127.0.0.1 -p "$(free_port)" -t u1 \
        -r "$rate" -l $((rate * 5)) -m "$calls" -timeout "$((DURATION + 40))s" \
        -recv_timeout 10000 -nostdin \
        -trace_stat -stf stat.csv -fd 1 -trace_rtt -rtt_freq 1 -trace_err \
        -trace_logs -log_file logs.log \
        "$dest" >sipp.out 2>sipp.err) || rc=$?
    # shellcheck disable=SC2086
    times >"$OUT/.times1"
    s1=$(cpu_seconds $servers); u1=$(cpu_seconds $fam); r1=$(reaped_seconds "$OUT/.times1")
    # shellcheck disable=SC2086
    x1=$(ctx_switches $servers); scrape "$OUT/.metrics1"; d1=$(udp_out)
    proc_snapshot "$OUT/.procs1"; w1=$(date +%s.%N); la1=$(loadavg)
    echo "    $label: sipp -sf $(basename "$scenario") -r $rate -l $((rate * 5)) -m $calls $dest (exit $rc)" >>"$OUT/commands.txt"
    python3 - "$label" "$kind" "$per_call" "$recips" "$rate" "$calls" "$dir/stat.csv" \
        "$(ls "$dir"/*_rtt.csv 2>/dev/null | head -1)" \
        "$s0" "$s1" "$u0" "$u1" "$r0" "$r1" "$OUT/.procs0" "$OUT/.procs1" "$w0" "$w1" "$la0" "$la1" "$$" \
        "$OTHER_MAX" "$OUT/results.tsv" "$x0" "$x1" "$OUT/.metrics0" "$OUT/.metrics1" "$d0" "$d1" \
        <<'EOF' | tee -a "$OUT/summary.txt"
import csv, sys
(label, kind, per_call, recips, rate, calls, stat, rtt, s0, s1, u0, u1, r0, r1, p0, p1,
 w0, w1, la0, la1, root, other_max, results, x0, x1, m0, m1, d0, d1) = sys.argv[1:30]
import os, re
per_call, recips, rate, calls = int(per_call), int(recips), int(rate), int(calls)
f = lambda a, b: float(b) - float(a)
server, sipp_uas, sipp_uac, wall = f(s0, s1), f(u0, u1), f(r0, r1), f(w0, w1)
# Everything the machine did in the window that was neither the server nor our SIPps: the
# CPU of every process outside this script's own tree (servers and SIPps are its
# descendants), summed from two process snapshots.
def snap(path):
    return {int(a): (int(b), c, int(d)) for a, b, c, d in
            (l.split() for l in open(path) if l.strip())}
before, after = snap(p0), snap(p1)
ours, grew = {int(root)}, True
while grew:
    grew = False
    for pid, (ppid, _, _) in list(after.items()) + list(before.items()):
        if ppid in ours and pid not in ours:
            ours.add(pid)
            grew = True
hz = os.sysconf('SC_CLK_TCK')
ticks = 0
for pid, (_, start, t1) in after.items():
    if pid in ours:
        continue
    b = before.get(pid)
    ticks += t1 - (b[2] if b and b[1] == start else 0)
other = ticks / hz
rows = list(csv.reader(open(stat), delimiter=';'))
head, last = rows[0], rows[-1]
col = lambda name: last[head.index(name)]
epoch = lambda name: float(col(name).split('\t')[-1])
elapsed = max(epoch('CurrentTime') - epoch('StartTime'), 1e-3)
ok, failed = int(col('SuccessfulCall(C)')), int(col('FailedCall(C)'))
times = []
try:
    for r in csv.reader(open(rtt), delimiter=';'):
        if len(r) >= 3 and r[2].strip() == '1':
            try:
                times.append(float(r[1]))
            except ValueError:
                pass
except (FileNotFoundError, IsADirectoryError):
    pass
times.sort()
p99 = times[min(len(times) - 1, int(0.99 * len(times)))] if times else float('nan')
cps = ok / elapsed
# Held: every call done, none failed, and at (nearly) the rate asked: a server that falls
# behind stretches the run instead of failing calls.
held = failed == 0 and ok >= calls and cps >= 0.9 * rate
per_call_ms = 1e3 * server / max(ok, 1)
per_unit_us = 1e3 * per_call_ms / per_call
void = other > float(other_max) * wall
unit = "dialog" if kind == "dialog" else "transaction"
(v0, n0), (v1, n1) = ([int(x) for x in a.split()] for a in (x0, x1))
ctx = f"{(v1 - v0) / max(ok, 1):.1f}+{(n1 - n0) / max(ok, 1):.1f}"
# The server's own p99 (initial INVITE arrival -> final response sent, accepted calls) from
# the growth of its histogram over the run: the upper bound of the bucket holding it.
def buckets(path):
    out = {}
    for line in open(path):
        m = re.match(r'imserver_invite_final_seconds_bucket\{(.*)\} (\S+)', line)
        if m and 'outcome="accepted"' in m.group(1):
            le = re.search(r'le="([^"]+)"', m.group(1)).group(1)
            out[float(le)] = float(m.group(2))
    return out
b0, b1 = buckets(m0), buckets(m1)
srv = "-"
if b1:
    grown = sorted((le, n - b0.get(le, 0)) for le, n in b1.items())
    total = grown[-1][1]
    if total > 0:
        le = next(le for le, n in grown if n >= 0.99 * total)
        srv = f"srv<={le * 1e3:.0f}" if le != float('inf') else "srv>30000"
extra = f", {per_unit_us * per_call / recips:.0f} us/recipient" if recips else ""
# Every datagram of these runs goes between the server and a SIPp, so the machine's UDP
# datagrams sent over the run (/proc/net/snmp, every process) are the server's datagrams in
# and out; anything else that sent UDP meanwhile counts too (read other_cpu_s).
dgrams = (int(d1) - int(d0)) / max(ok, 1)
per_dgram = f"{1e6 * server / (dgrams * ok):.1f}" if dgrams > 0 else "-"
print(f"{label}: {'HELD' if held else 'NOT HELD'} {rate}/s -> {ok} ok, {failed} failed of {calls} "
      f"= {cps:.0f} calls/s; server CPU {server:.2f} s = {per_call_ms:.3f} ms/call = "
      f"{per_unit_us:.0f} us/{unit} ({per_call} per call{extra}); {dgrams:.1f} datagrams/call, "
      f"{per_dgram} us/datagram; p99 {p99:.0f} ms ({srv}); "
      f"ctx switches/call {ctx}; sipp {sipp_uac + sipp_uas:.2f} s; other_cpu_s {other:.2f} of {wall:.1f} s wall"
      f"{' VOID (machine busy)' if void else ''}; load {la0} -> {la1}")
with open(results, 'a') as out:
    out.write('\t'.join(str(x) for x in (label, kind, per_call, recips, rate, ok, failed,
              int(held), f"{cps:.1f}", f"{per_call_ms:.4f}", f"{per_unit_us:.1f}",
              f"{p99:.1f}", f"{other:.2f}", f"{wall:.1f}", int(void), srv, ctx,
              f"{dgrams:.1f}", per_dgram)) + '\n')
EOF
}

# compare_run at each rate of a space-separated list, lowest first, until one is not held
# (a failed call, or fewer calls done than sent). Same arguments as compare_run, with the
# list in place of the rate; labels get "@rate", folders "/rRATE".
ramp() {
    local r
    for r in $5; do
        compare_run "$1@$r" "$2" "$3" "$4" "$r" "$6" "$7" "$8/r$r" "$9" "${10}" "${11}"
        [ "$(tail -1 "$OUT/results.tsv" | cut -f8)" = 1 ] || break
        # Let retransmission and linger timers of the step before run out.
        sleep 2
    done
}

sum() { local t=0 r; for r in $1; do t=$((t + r)); done; echo "$t"; }
count() { local n=0 r; for r in $1; do n=$((n + 1)); done; echo "$n"; }

# The table of ratios to Kamailio, from results.tsv.
compare_table() {
    python3 - "$OUT/results.tsv" <<'EOF' | tee -a "$OUT/summary.txt"
import sys
rows = [l.rstrip('\n').split('\t') for l in open(sys.argv[1]) if l.strip()]
# The baseline of each kind: Kamailio's highest rate held (else its first row).
base = {}
for r in rows:
    if r[0].startswith('kamailio') and (r[1] not in base or r[7] == '1'):
        base[r[1]] = r
# Highest rate held per scenario (label before '@'), and that step's CPU per call.
# Rates ramp up, so the last row held is the highest.
best = {}
for r in rows:
    name = r[0].split('@')[0]
    best.setdefault(name, None)
    if r[7] == '1':
        best[name] = r
print()
for name, r in best.items():
    if r is None:
        print(f"{name}: no rate held")
    else:
        print(f"{name}: held {r[4]}/s with 0 failures ({r[8]} calls/s done), {r[9]} ms server CPU per call"
              f"{' (VOID run: machine busy)' if r[14] == '1' else ''}")
print()
print("| run | held | calls/s | failed | server ms/call | us/dialog (INVITE) or /transaction (MESSAGE) | x Kamailio | datagrams/call | us/datagram | p99 ms (server's own) | ctx switches/call | other_cpu_s | run |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rows:
    b = base.get(r[1])
    ratio = f"{float(r[10]) / float(b[10]):.1f}x" if b and float(b[10]) > 0 else "-"
    print(f"| {r[0]} | {'yes' if r[7] == '1' else 'no'} at {r[4]}/s | {r[8]} | {r[6]} | {r[9]} | "
          f"{r[10]} | {ratio} | {r[17] if len(r) > 18 else '-'} | {r[18] if len(r) > 18 else '-'} | {r[11]} ({r[15] if len(r) > 15 else '-'}) | {r[16] if len(r) > 16 else '-'} | "
          f"{r[12]} of {r[13]} s | {'VOID' if r[14] == '1' else 'valid'} |")
EOF
}

# The group scenario's ramp (GROUP_RATE) on a fresh server with w workers, its /metrics on.
group_ramp() { # workers dir
    local w="$1" d="$2" i upids="" xport
    local members=() ports=()
    mkdir -p "$d/groups"
    for i in 0 1 2; do
        ports+=("$(free_port)")
        members+=("sip:member$i@127.0.0.1:${ports[$i]}")
    done
    group_document "$d/groups/load.xml" "${members[@]}"
    xport=$(free_port)
    start_im_server --workers "$w" --groups "$d/groups" --xcap "127.0.0.1:$xport" --store "$d/store.redb"
    IM_METRICS="http://127.0.0.1:$xport/metrics"
    echo "im-server --workers $w --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn --groups ... --xcap 127.0.0.1:$xport --store ..." >>"$OUT/commands.txt"
    for i in 0 1 2; do
        start_uas "$d/uas$i" "$here/uas_member.xml" "${ports[$i]}" $(($(sum "$GROUP_RATE") * DURATION))
        upids+=" $UAS_PID"
    done
    sleep 0.5
    ramp "im-server-w$w-group3" dialog 4 3 "$GROUP_RATE" "$IM_PID" "$upids" \
        "$d" "$here/invite_pager.xml" sip:load@example.com "127.0.0.1:$IM_PORT"
    for i in $upids; do stop "$i"; done
    stop "$IM_PID"
    IM_METRICS=""
}

run_group() {
    local w
    : >"$OUT/results.tsv"
    for w in $WORKERS; do
        group_ramp "$w" "$OUT/group/w$w"
    done
    compare_table
}

# Kamailio tm (scripts/load/kamailio_tm.cfg) on a free port, capped like any server under
# test: KAM_PID and KAM_PORT.
start_kamailio() {
    KAM_PORT=$(free_port)
    # 256 MiB of shared memory: tm keeps each INVITE transaction through its wait timer, and
    # 64 MiB ran out at 500 dialogs/s ("new_t(): out of mem", 500 replies).
    nice -n "$SERVER_NICE" kamailio -f "$here/kamailio_tm.cfg" -l "udp:127.0.0.1:$KAM_PORT" -DD -E -m 256 -M 8 \
        >"$OUT/kamailio_tm.log" 2>&1 &
    KAM_PID=$!
    pids+=("$KAM_PID")
    wait_udp 127.0.0.1 "$KAM_PORT" || die "kamailio did not answer on 127.0.0.1:$KAM_PORT"
    # shellcheck disable=SC2046
    cap_cpu $(family "$KAM_PID")
    echo "kamailio -f scripts/load/kamailio_tm.cfg -l udp:127.0.0.1:$KAM_PORT -DD -E -m 256 -M 8" >>"$OUT/commands.txt"
}

# The MESSAGE-to-a-list ramp (MSG_RATE) on a fresh server with w workers: 1 + n transactions
# per MESSAGE at the server, every copy answered by one SIPp UAS. A fresh server each, so
# that one scenario's collapse cannot poison the next.
message_ramp() { # workers n dir
    local w="$1" n="$2" dir="$3" uport
    start_im_server --workers "$w"
    echo "im-server --workers $w --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn" >>"$OUT/commands.txt"
    uport=$(free_port)
    message_scenario "$dir/message_$n.xml" "$n" "$uport" 202
    start_uas "$dir/w$w-message$n/uas" "$here/uas_message.xml" "$uport" $(($(sum "$MSG_RATE") * DURATION * n))
    sleep 0.5
    ramp "im-server-w$w-message$n" message $((n + 1)) "$n" "$MSG_RATE" "$IM_PID" "$UAS_PID" \
        "$dir/w$w-message$n" "$dir/message_$n.xml" sip:conference-factory@example.com "127.0.0.1:$IM_PORT"
    stop "$UAS_PID"
    stop "$IM_PID"
}

# floor: the least this machine spends per datagram (scripts/load/floor.c, a stateless UDP
# responder built here with cc), for each loop in FLOOR_LOOPS, with SIPp's dialog scenario
# (INVITE, 200, ACK, BYE, 200: 5 datagrams at the server) at FLOOR_RATE and its MESSAGE
# scenario (2 datagrams) at FLOOR_MSG_RATE, and the CPU of a refused TCP connect (20,000 in
# a row, `floor PORT refused N`); then, in the same run, the im-server group
# ramp (GROUP_RATE, the first worker count of WORKERS) and its MESSAGE to a list of 10
# (MSG_RATE) when MSG_RATE is not empty, after Kamailio tm's dialogs at KAM_RATE (when
# KAMAILIO is installed and KAM_RATE is not empty). The table's us/datagram column sets them side by side.
run_floor() {
    command -v cc >/dev/null || die "cc not found: apt-get install -y gcc"
    local dir="$OUT/floor" port fpid loop w
    mkdir -p "$dir"
    : >"$OUT/results.tsv"
    cc -O2 -o "$dir/floor" "$here/floor.c" || die "cannot build scripts/load/floor.c"
    # What a refused TCP connect costs (the group scenario's three MSRP connects per session).
    echo "refused connects: $("$dir/floor" "$(free_port)" refused 20000)" | tee -a "$OUT/summary.txt"
    for loop in $FLOOR_LOOPS; do
        port=$(free_port)
        nice -n "$SERVER_NICE" "$dir/floor" "$port" "$loop" &
        fpid=$!
        pids+=("$fpid")
        wait_udp 127.0.0.1 "$port" || die "floor did not answer on 127.0.0.1:$port"
        cap_cpu "$fpid"
        echo "floor $port $loop" >>"$OUT/commands.txt"
        ramp "floor-$loop-dialog" dialog 1 0 "$FLOOR_RATE" "$fpid" "" \
            "$dir/$loop-dialog" "$here/uac_dialog.xml" "sip:load@127.0.0.1:$port" "127.0.0.1:$port"
        message_scenario "$dir/message_floor.xml" 3 9 200
        ramp "floor-$loop-message" message 1 0 "$FLOOR_MSG_RATE" "$fpid" "" \
            "$dir/$loop-message" "$dir/message_floor.xml" "sip:load@127.0.0.1:$port" "127.0.0.1:$port"
        stop "$fpid"
    done
    if [ -n "$KAM_RATE" ] && command -v kamailio >/dev/null; then
        start_kamailio
        ramp kamailio-tm-dialog dialog 1 0 "$KAM_RATE" "$(family "$KAM_PID" | tr '\n' ' ')" "" \
            "$dir/kam-dialog" "$here/uac_dialog.xml" "sip:load@127.0.0.1:$KAM_PORT" "127.0.0.1:$KAM_PORT"
        stop "$KAM_PID"
    fi
    w=${WORKERS%% *}
    [ -n "$GROUP_RATE" ] && group_ramp "$w" "$dir/w$w-group"
    if [ -n "$MSG_RATE" ]; then
        message_ramp "$w" 10 "$dir"
    fi
    compare_table
}

run_compare() {
    command -v kamailio >/dev/null || die "kamailio not found: apt-get install -y kamailio"
    local dir="$OUT/compare" port kpid w n
    mkdir -p "$dir"
    : >"$OUT/results.tsv"

    # Kamailio tm: INVITE dialogs, then MESSAGE (one transaction each).
    start_kamailio
    kpid=$KAM_PID
    port=$KAM_PORT
    ramp kamailio-tm-dialog dialog 1 0 "$KAM_RATE" "$(family "$kpid" | tr '\n' ' ')" "" \
        "$dir/kam-dialog" "$here/uac_dialog.xml" "sip:load@127.0.0.1:$port" "127.0.0.1:$port"
    message_scenario "$dir/message_kam.xml" 3 9 200
    ramp kamailio-tm-message message 1 0 "$KAM_RATE" "$(family "$kpid" | tr '\n' ' ')" "" \
        "$dir/kam-message" "$dir/message_kam.xml" "sip:load@127.0.0.1:$port" "127.0.0.1:$port"
    stop "$kpid"

    for w in $WORKERS; do
        group_ramp "$w" "$dir/w$w-group"

        # MESSAGE to a list of 3 and of 10: 1 + n transactions per MESSAGE at the server.
        # A fresh server each, so that one scenario's collapse cannot poison the next.
        for n in 3 10; do
            message_ramp "$w" "$n" "$dir"
        done
    done
    compare_table
}

# overload (issue 11 done-when): the group scenario's ramp finds the highest rate held with
# the first worker count of WORKERS; then the same server takes twice that rate for DURATION
# s with a scenario that accepts 503. Printed: calls accepted and shed (503) per second,
# calls failed otherwise, and p99 of INVITE->200 over the accepted calls; the run passes when
# none failed and that p99 is under 200 ms (a void run says nothing either way).
run_overload() {
    local dir="$OUT/overload" w="${WORKERS%% *}" i upids="" held=0 rate r line xport
    local members=() ports=()
    mkdir -p "$dir/groups"
    : >"$OUT/results.tsv"
    for i in 0 1 2; do
        ports+=("$(free_port)")
        members+=("sip:member$i@127.0.0.1:${ports[$i]}")
    done
    group_document "$dir/groups/load.xml" "${members[@]}"
    xport=$(free_port)
    start_im_server --workers "$w" --groups "$dir/groups" --xcap "127.0.0.1:$xport" --store "$dir/store.redb"
    IM_METRICS="http://127.0.0.1:$xport/metrics"
    echo "im-server --workers $w --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn --groups ... --xcap 127.0.0.1:$xport --store ..." >>"$OUT/commands.txt"
    for i in 0 1 2; do
        start_uas "$dir/uas$i" "$here/uas_member.xml" "${ports[$i]}" \
            $((($(sum "$GROUP_RATE") + 4 * ${GROUP_RATE##* }) * DURATION)) \
            $(($(count "$GROUP_RATE") * (DURATION + 10) + DURATION + 20))
        upids+=" $UAS_PID"
    done
    sleep 0.5
    ramp "im-server-w$w-group3" dialog 4 3 "$GROUP_RATE" "$IM_PID" "$upids" \
        "$dir/ramp" "$here/invite_pager.xml" sip:load@example.com "127.0.0.1:$IM_PORT"
    for r in $GROUP_RATE; do
        line=$(grep -P "^im-server-w$w-group3@$r\t" "$OUT/results.tsv" || true)
        [ -n "$line" ] && [ "$(echo "$line" | cut -f8)" = 1 ] && held=$r
    done
    # None held: twice the lowest rate tried (the report then says "held 0/s").
    rate=$((2 * (held > 0 ? held : ${GROUP_RATE%% *})))
    # Let the ramp's last transactions and retransmissions run out first.
    sleep 5
    compare_run "im-server-w$w-overload@$rate" dialog 4 3 "$rate" "$IM_PID" "$upids" \
        "$dir/over" "$here/invite_pager_shed.xml" sip:load@example.com "127.0.0.1:$IM_PORT"
    python3 - "$dir/over" "$OUT/results.tsv" "$held" "$rate" "$DURATION" <<'EOF' | tee -a "$OUT/summary.txt"
import glob, sys
d, results = sys.argv[1], sys.argv[2]
held, rate, duration = int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
last = open(results).read().strip().split('\n')[-1].split('\t')
ok, failed, p99, void = int(last[5]), int(last[6]), float(last[11]), last[14] == '1'
srv = last[15] if len(last) > 15 else '-'
shed = sum(open(f).read().count('shed ') for f in glob.glob(d + '/logs.log*'))
accepted = ok - shed
verdict = 'VOID (machine busy)' if void else ('PASS' if failed == 0 and p99 < 200 else 'FAIL')
print(f"overload: held {held}/s; at {rate}/s for {duration} s: {accepted} accepted "
      f"({accepted / duration:.0f}/s), {shed} shed with 503 ({shed / duration:.0f}/s), "
      f"{failed} failed otherwise; p99 INVITE->200 of the accepted {p99:.0f} ms "
      f"(the server's own: {srv} ms): {verdict}")
EOF
    for i in $upids; do stop "$i"; done
    stop "$IM_PID"
    IM_METRICS=""
}

# soak (issue 11 done-when, a documented run, not CI): the group ramp finds the rate held
# (or SOAK_RATE sets it), then the same server carries 80 % of it for SOAK_DURATION s while
# its RSS and live sessions (from /metrics) are sampled every 10 s into soak.csv. After the
# calls end and the transactions they left have lingered out (32 s), the driver loops have
# dropped their INVITE timing records (64 s + 5 s) and the allocator has purged the pages
# they freed (jemalloc's decay, ~10 s): SOAK_SETTLE s (90), it prints RSS and live sessions
# at the start of the soak (after the ramp's warm-up) and at the end (soak.csv also has
# jemalloc's own counts: allocated, active, resident, metadata); the run passes when no
# call failed, no session is left and RSS is within 10 % of the start.
run_soak() {
    local dir="$OUT/soak" w="${WORKERS%% *}" i upids="" held=0 rate r line xport sampler
    local members=() ports=() secs="${SOAK_DURATION:-600}"
    mkdir -p "$dir/groups"
    : >"$OUT/results.tsv"
    for i in 0 1 2; do
        ports+=("$(free_port)")
        members+=("sip:member$i@127.0.0.1:${ports[$i]}")
    done
    group_document "$dir/groups/load.xml" "${members[@]}"
    xport=$(free_port)
    start_im_server --workers "$w" --groups "$dir/groups" --xcap "127.0.0.1:$xport" \
        --store "$dir/store.redb"
    echo "im-server --workers $w --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn --groups ... --xcap 127.0.0.1:$xport" >>"$OUT/commands.txt"
    for i in 0 1 2; do
        start_uas "$dir/uas$i" "$here/uas_member.xml" "${ports[$i]}" \
            $(($(sum "$GROUP_RATE") * DURATION + ${SOAK_RATE:-${GROUP_RATE##* }} * (secs + 60))) \
            $(($(count "$GROUP_RATE") * (DURATION + 10) + secs + 220))
        upids+=" $UAS_PID"
    done
    sleep 0.5
    if [ -n "${SOAK_RATE:-}" ]; then
        held=$SOAK_RATE
    else
        ramp "im-server-w$w-group3" dialog 4 3 "$GROUP_RATE" "$IM_PID" "$upids" \
            "$dir/ramp" "$here/invite_pager.xml" sip:load@example.com "127.0.0.1:$IM_PORT"
        for r in $GROUP_RATE; do
            line=$(grep -P "^im-server-w$w-group3@$r\t" "$OUT/results.tsv" || true)
            [ -n "$line" ] && [ "$(echo "$line" | cut -f8)" = 1 ] && held=$r
        done
        [ "$held" -gt 0 ] || die "soak: no rate of GROUP_RATE held"
    fi
    rate=$((held * 8 / 10))
    if [ -n "${SOAK_RATE:-}" ]; then
        # No ramp ran: warm the server up at the soak's rate first, so that the start sample
        # is taken after the allocator has reached the peak of lingering transactions (freed
        # memory is kept by the allocator, not returned): growth after it is what leaks.
        DURATION=60 compare_run "im-server-w$w-soak-warmup@$rate" dialog 4 3 "$rate" "$IM_PID" \
            "$upids" "$dir/warmup" "$here/invite_pager.xml" sip:load@example.com \
            "127.0.0.1:$IM_PORT"
    fi
    sleep "${SOAK_SETTLE:-90}"
    sample() { # seconds-since-start
        local rss live m
        rss=$(awk '/^VmRSS/ {print $2}' "/proc/$IM_PID/status")
        m=$(curl -s "http://127.0.0.1:$xport/metrics")
        live=$(echo "$m" | awk '$1 ~ /sessions_live$/ {print $2}')
        # The allocator's own counts (KiB): what the server holds, and what is resident by
        # the allocator's count (RSS less the binary, stacks and other mappings).
        alloc() { echo "$m" | awk -v k="kind=\"$1\"" 'index($1, "allocator_bytes") && index($1, k) {print int($2 / 1024)}'; }
        echo "$1,$rss,${live:-?},$(alloc allocated),$(alloc active),$(alloc resident),$(alloc metadata)"
    }
    # jemalloc's size classes at an idle sample (SOAK_BINS=1): taken before the sample, so
    # that the sample's RSS includes whatever gdb's visit touched.
    bins() { # tag [flush]
        [ "${SOAK_BINS:-0}" = 1 ] || return 0
        echo "jemalloc size classes at the $1 sample:" | tee -a "$OUT/summary.txt"
        "$here/jemalloc-bins.sh" "$IM_PID" "$OUT/im-server.$IM_PORT.log" "$dir/jstats-$1.json" \
            ${2:-} | tee -a "$OUT/summary.txt" || echo "  (not dumped)" | tee -a "$OUT/summary.txt"
    }
    echo "seconds,rss_kib,sessions_live,allocated_kib,active_kib,resident_kib,metadata_kib" >"$dir/soak.csv"
    bins start
    sample 0 >>"$dir/soak.csv"
    (t=0; while sleep 10; do t=$((t + 10)); sample "$t"; done >>"$dir/soak.csv") &
    sampler=$!
    pids+=("$sampler")
    DURATION=$secs compare_run "im-server-w$w-soak@$rate" dialog 4 3 "$rate" "$IM_PID" "$upids" \
        "$dir/run" "$here/invite_pager.xml" sip:load@example.com "127.0.0.1:$IM_PORT"
    sleep "${SOAK_SETTLE:-90}"
    stop "$sampler"
    bins end
    sample end >>"$dir/soak.csv"
    # After the verdict's sample: what the threads' caches held, for the diagnosis only.
    bins end-flushed flush
    python3 - "$dir/soak.csv" "$OUT/results.tsv" "$held" "$rate" "$secs" <<'EOF' | tee -a "$OUT/summary.txt"
import csv, sys
rows = list(csv.DictReader(open(sys.argv[1])))
last = open(sys.argv[2]).read().strip().split('\n')[-1].split('\t')
held, rate, secs = sys.argv[3], sys.argv[4], sys.argv[5]
ok, failed, void = int(last[5]), int(last[6]), last[14] == '1'
r0, r1 = int(rows[0]['rss_kib']), int(rows[-1]['rss_kib'])
l0, l1 = rows[0]['sessions_live'], rows[-1]['sessions_live']
peak = max(int(r['rss_kib']) for r in rows)
good = failed == 0 and l1 == l0 and r1 <= 1.1 * r0
verdict = 'VOID (machine busy)' if void else ('PASS' if good else 'FAIL')
print(f"soak: held {held}/s; {rate}/s for {secs} s: {ok} ok, {failed} failed; RSS {r0} KiB at the "
      f"start, peak {peak}, {r1} at the end; live sessions {l0} -> {l1}: {verdict}")
EOF
    for i in $upids; do stop "$i"; done
    stop "$IM_PID"
}

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(all)
{
    echo "# $(date -u +%FT%TZ) DURATION=$DURATION RATE=$RATE MAX_LIMIT=$MAX_LIMIT INVITE_RATE=$INVITE_RATE"
    echo "# $(nproc) cores; sipp $(sipp -v 2>&1 | grep -o 'v[0-9.]*' | head -1); WORKERS=$WORKERS KAM_RATE=$KAM_RATE GROUP_RATE=$GROUP_RATE MSG_RATE=$MSG_RATE SERVER_NICE=$SERVER_NICE SERVER_CPU_QUOTA=${SERVER_CPU_QUOTA:-none} SIPP_BUFF=$SIPP_BUFF"
} | tee -a "$OUT/summary.txt"
for t in "${targets[@]}"; do
    case "$t" in
    options) run_options ;;
    kamailio) run_kamailio ;;
    invite) run_invite ;;
    compare) run_compare ;;
    group) run_group ;;
    overload) run_overload ;;
    soak) run_soak ;;
    floor) run_floor ;;
    all) run_options; run_kamailio; run_invite; run_compare ;;
    *) die "unknown run '$t' (options, kamailio, invite, compare, group, overload, soak, floor, all)" ;;
    esac
done
echo "logs, CSVs and commands in $OUT"
