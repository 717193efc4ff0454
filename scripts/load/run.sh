#!/usr/bin/env bash
# SIPp load runs against the release im-server, with Kamailio as the OPTIONS baseline.
# Not part of the test suite: run by hand, results go to docs/performance.md.
#
#   scripts/load/run.sh [options|kamailio|invite|all]...     (default: all)
#
# Environment (defaults in brackets):
#   DURATION      seconds per run [15]; every SIPp run is also bounded by a call count (-m)
#                 and a global -timeout, and the whole script by `timeout`
#   RATE          fixed OPTIONS rate, calls/s [1000]
#   MAX_LIMIT     simultaneous calls in the max-rate OPTIONS runs (closed loop) [50]
#   INVITE_RATE   pager-mode group INVITE calls/s [20]
#   OUT           folder for logs and CSVs [a new folder under /tmp]
#   IM_SERVER     im-server binary [target/release/im-server, built when missing]
#
# Every address is 127.0.0.1; ports are picked free at start. Each server the script starts
# is stopped by its own pid when the script ends (also on error or Ctrl-C).
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
DURATION="${DURATION:-15}"
RATE="${RATE:-1000}"
MAX_LIMIT="${MAX_LIMIT:-50}"
INVITE_RATE="${INVITE_RATE:-20}"
OUT="${OUT:-$(mktemp -d /tmp/imspec-load.XXXXXX)}"
IM_SERVER="${IM_SERVER:-$root/target/release/im-server}"
mkdir -p "$OUT"

die() { echo "run.sh: $*" >&2; exit 1; }
command -v sipp >/dev/null || die "sipp not found: apt-get install -y sip-tester"

pids=()
cleanup() {
    local p
    for p in "${pids[@]}"; do
        kill "$p" 2>/dev/null || true
    done
    for p in "${pids[@]}"; do
        wait "$p" 2>/dev/null || true
    done
}
trap cleanup EXIT INT TERM

# A port free for UDP and TCP on 127.0.0.1 (bind port 0, release).
free_port() {
    python3 - <<'EOF'
import socket
for _ in range(100):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind(("127.0.0.1", 0))
    port = u.getsockname()[1]
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        t.bind(("127.0.0.1", port))
    except OSError:
        continue
    finally:
        t.close()
        u.close()
    print(port)
    break
EOF
}

loadavg() { cut -d' ' -f1-3 /proc/loadavg; }

# CPU seconds (user+system) used so far by a process and its live children.
cpu_seconds() {
    local total=0 p ticks
    for p in "$@"; do
        [ -r "/proc/$p/stat" ] || continue
        # Fields 14 and 15 (utime, stime) come after the ")" that ends the command name.
        ticks=$(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13}')
        total=$((total + ticks))
    done
    awk -v t="$total" -v hz="$(getconf CLK_TCK)" 'BEGIN { printf "%.2f", t / hz }'
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
    (cd "$dir" && timeout $((tmo + 30)) sipp -sf "$here/options.xml" \
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
    "$IM_SERVER" --sip "127.0.0.1:$IM_PORT" --msrp "127.0.0.1:$IM_MSRP" --log warn "$@" \
        >"$OUT/im-server.$IM_PORT.log" 2>&1 &
    IM_PID=$!
    pids+=("$IM_PID")
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
    # would slow the max run down (the transaction table is scanned on every input).
    start_im_server
    echo "im-server $IM_SERVER --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn" >>"$OUT/commands.txt"
    options_run im-server-options-max 127.0.0.1 "$IM_PORT" 100000 "$MAX_LIMIT" 2000000 "$DURATION" "$IM_PID"
    stop "$IM_PID"
}

run_kamailio() {
    command -v kamailio >/dev/null || die "kamailio not found: apt-get install -y kamailio"
    local port
    port=$(free_port)
    kamailio -f "$here/kamailio.cfg" -l "udp:127.0.0.1:$port" -DD -E -m 64 -M 8 \
        >"$OUT/kamailio.log" 2>&1 &
    local kpid=$!
    pids+=("$kpid")
    wait_udp 127.0.0.1 "$port" || die "kamailio did not answer on 127.0.0.1:$port"
    echo "kamailio -f scripts/load/kamailio.cfg -l udp:127.0.0.1:$port -DD -E -m 64 -M 8" >>"$OUT/commands.txt"
    # shellcheck disable=SC2046
    options_run kamailio-options-fixed 127.0.0.1 "$port" "$RATE" $((RATE / 2 + 10)) $((RATE * DURATION)) $((DURATION + 10)) $(family "$kpid")
    # shellcheck disable=SC2046
    options_run kamailio-options-max 127.0.0.1 "$port" 100000 "$MAX_LIMIT" 2000000 "$DURATION" $(family "$kpid")
    stop "$kpid"
}

run_invite() {
    local calls=$((INVITE_RATE * DURATION)) dir="$OUT/im-server-invite3" i members="" uas=()
    mkdir -p "$dir/groups"
    local ports=()
    for i in 0 1 2; do
        ports+=("$(free_port)")
        members+="      <rl:entry uri=\"sip:member$i@127.0.0.1:${ports[$i]}\"/>"$'\n'
    done
    cat >"$dir/groups/load.xml" <<EOF
<?xml version="1.0" encoding="UTF-8"?>
<group xmlns="urn:oma:xml:poc:list-service"
       xmlns:rl="urn:ietf:params:xml:ns:resource-lists"
       xmlns:cp="urn:ietf:params:xml:ns:common-policy">
  <list-service uri="sip:load@example.com">
    <list>
      <rl:entry uri="sip:loader@example.com"/>
$members    </list>
    <cp:ruleset>
      <cp:rule id="members">
        <cp:conditions><is-list-member/></cp:conditions>
        <cp:actions><allow-initiate-conference>true</allow-initiate-conference></cp:actions>
      </cp:rule>
    </cp:ruleset>
  </list-service>
</group>
EOF
    start_im_server --groups "$dir/groups"
    echo "im-server $IM_SERVER --sip 127.0.0.1:$IM_PORT --msrp 127.0.0.1:$IM_MSRP --log warn --groups $dir/groups" >>"$OUT/commands.txt"
    for i in 0 1 2; do
        mkdir -p "$dir/uas$i"
        (cd "$dir/uas$i" && exec timeout $((DURATION + 60)) sipp -sf "$here/uas_member.xml" \
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
    (cd "$dir" && timeout $((DURATION + 60)) sipp -sf "$here/invite_pager.xml" \
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

targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=(all)
{
    echo "# $(date -u +%FT%TZ) DURATION=$DURATION RATE=$RATE MAX_LIMIT=$MAX_LIMIT INVITE_RATE=$INVITE_RATE"
    echo "# $(nproc) cores; sipp $(sipp -v 2>&1 | grep -o 'v[0-9.]*' | head -1)"
} | tee -a "$OUT/summary.txt"
for t in "${targets[@]}"; do
    case "$t" in
    options) run_options ;;
    kamailio) run_kamailio ;;
    invite) run_invite ;;
    all) run_options; run_kamailio; run_invite ;;
    *) die "unknown run '$t' (options, kamailio, invite, all)" ;;
    esac
done
echo "logs, CSVs and commands in $OUT"
