#!/usr/bin/env bash
# measure-fleet.sh: how `tokenwatch daemon` scales with the number of accounts.
#
# Starts the embedded simulator (`tokenwatch simulate`) on a free loopback port, has it issue
# N tokens (POST /sim/token, 20-hour lifetime so the time of day does not matter), writes a
# config with N accounts (the top level "default" plus N-1 under `accounts:`) that all point
# at the simulator, renew.strategy none, no backups, and server.listen on a free loopback
# port. Then it starts `tokenwatch daemon` with it and measures:
#   - start-up: time from exec until GET /healthz answers 200 (polled every 10 ms over
#     bash's /dev/tcp, so no process is forked per poll);
#   - first checks: time from exec until every account logged the outcome of its first
#     check ("Token valid ..."), and the profile calls the simulator served per second
#     meanwhile (from its debug log: peak 1-second bucket and the mean over the span);
#   - peak RSS: VmHWM from /proc/<pid>/status once every first check is done, plus the
#     thread count then;
#   - idle CPU over the next --window seconds (after --settle more seconds of quiet):
#     utime+stime from /proc/<pid>/stat in ticks and the scheduler's ns-precise sum over
#     threads (schedstat), both as ms of CPU per minute; voluntary context switches per s.
# Afterwards /metrics is read once to confirm that all N tokens are valid.
#
# Usage: scripts/measure-fleet.sh [N] [BINARY] [--window S] [--settle S] [--timeout S]
#                                 [--nofile N] [--keep]
#   N            number of accounts (default 1000)
#   BINARY       the tokenwatch binary (default $TOKENWATCH_BIN, else target/release/tokenwatch)
#   --window S   idle window length in seconds (default 60)
#   --settle S   quiet seconds after the last first check before the window (default 15,
#                longer than tokio's 10 s keep-alive of idle blocking-pool threads)
#   --timeout S  give up when the first checks are not all done S seconds after exec (default 300)
#   --nofile N   soft open-file limit for both processes. By default a soft limit below
#                N+1280 is raised to that (up to the hard limit): each account keeps its own
#                connection to the simulator open (N sockets in the daemon, N in the
#                simulator), and at start-up up to 512 blocking threads at once open a token
#                file and its lock file. With the common default of 1024, N=1000 fails: some
#                accounts get EMFILE reading their token file and stay at "No token".
#   --keep       keep the work folder (config, token files, both logs) and print its path
#
# Needs bash 5, curl, awk, GNU date, getconf. Everything runs in a temporary folder with
# HOME pointing into it; the trap stops both processes and removes the folder on any exit.
set -euo pipefail

N=1000
WINDOW=60
SETTLE=15
TIMEOUT=300
NOFILE=""
KEEP=0
BIN_ARG=""

die() { echo "measure-fleet: $*" >&2; exit 1; }
positive() { [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "measure-fleet: $1 needs a positive whole number" >&2; exit 2; }; }
while (($#)); do
    case $1 in
        --window) positive "$1" "${2:-}"; WINDOW=$2; shift ;;
        --settle) [[ ${2:-} =~ ^[0-9]+$ ]] || { echo "measure-fleet: --settle needs a whole number" >&2; exit 2; }; SETTLE=$2; shift ;;
        --timeout) positive "$1" "${2:-}"; TIMEOUT=$2; shift ;;
        --nofile) positive "$1" "${2:-}"; NOFILE=$2; shift ;;
        --keep) KEEP=1 ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        -*) echo "measure-fleet: unknown option '$1' (try --help)" >&2; exit 2 ;;
        *)
            if [[ $1 =~ ^[1-9][0-9]*$ && -z $BIN_ARG ]]; then N=$1
            elif [[ -z $BIN_ARG ]]; then BIN_ARG=$1
            else echo "measure-fleet: unexpected argument '$1' (try --help)" >&2; exit 2
            fi ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${BIN_ARG:-${TOKENWATCH_BIN:-$ROOT/target/release/tokenwatch}}
[[ -x $BIN ]] || die "$BIN is not an executable; build it with 'cargo build --release' or pass another"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
((BASH_VERSINFO[0] >= 5)) || die "needs bash 5 (EPOCHREALTIME)"
for tool in curl awk date getconf; do
    command -v "$tool" >/dev/null || die "not installed: $tool"
done

# ---- open files ---------------------------------------------------------------------------
# Every account has its own HTTP client, hence its own keep-alive connection: N sockets in
# the daemon and N in the simulator. At start-up tokio's blocking pool (512 threads at
# most) also opens token and lock files for many accounts at once. See --nofile.
hard=$(ulimit -Hn)
want=${NOFILE:-$((N + 1280))}
soft=$(ulimit -Sn)
if [[ -n $NOFILE ]] || { [[ $soft != unlimited ]] && ((soft < want)); }; then
    if [[ $hard != unlimited ]] && ((want > hard)); then
        echo "measure-fleet: the hard open-file limit is $hard, below the $want wanted; using $hard" >&2
        want=$hard
    fi
    ulimit -Sn "$want"
fi
NOFILE_USED=$(ulimit -Sn)

# ---- work folder, processes, cleanup ----------------------------------------------------------
umask 077   # token files 0600, as tokenwatch wants them
WORK=$(mktemp -d "${TMPDIR:-/tmp}/measure-fleet.XXXXXX")
mkdir -p "$WORK/home" "$WORK/tokens"
SIM_PID="" TW_PID=""
stop() {  # stop <pid>: SIGTERM, up to 25 s (the daemon gives workers 20 s), then SIGKILL
    local pid=$1
    [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 250); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
}
cleanup() {
    stop "$TW_PID"
    stop "$SIM_PID"
    if ((KEEP)); then echo "measure-fleet: kept $WORK" >&2; else rm -rf "$WORK"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Each program runs with an empty environment but PATH and a HOME inside $WORK, from $WORK
# (no .env, no ./config/tokenwatch.yaml, no legacy credentials file of the real user).
run_clean() { cd "$WORK" && exec env -i PATH="$PATH" HOME="$WORK/home" LANG=C.UTF-8 "$@"; }

# The simulator picks its own port (127.0.0.1:0) and prints its address on the first line.
# -v: it logs every request at debug level, with a timestamp (the profile-call rate below).
(run_clean "$BIN" -v simulate --listen 127.0.0.1:0 --token-lifetime 20h) \
    >"$WORK/sim.out" 2>"$WORK/sim.log" &
SIM_PID=$!
BASE=""
for _ in $(seq 500); do
    line=$(head -n1 "$WORK/sim.out" 2>/dev/null || true)
    if [[ $line == "Upstox simulator listening on "* ]]; then BASE=${line#Upstox simulator listening on }; break; fi
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.01
done
[[ -n $BASE ]] || { cat "$WORK/sim.out" "$WORK/sim.log" >&2; die "the simulator did not start"; }

# N tokens in one curl run (one connection, URL globbing): tokens/t1.json .. tokens/tN.json,
# each the flat token-exchange answer, which tokenwatch reads as a token file.
curl -sSf -X POST "$BASE/sim/token?n=[1-$N]" -o "$WORK/tokens/t#1.json" \
    || die "the simulator did not issue $N tokens"
issued=$(find "$WORK/tokens" -name 't*.json' | wc -l)
((issued == N)) || die "got $issued token files, wanted $N"

# ---- config -------------------------------------------------------------------------------
# A free port for the API: one below the ephemeral range (the 2N client connections take
# ports from that range), where nothing answers a connect. Re-picked if the daemon then
# finds it taken anyway.
read -r eph_lo _ </proc/sys/net/ipv4/ip_local_port_range
pick_port() {
    local lo=10000 hi=$((eph_lo - 1)) p
    ((hi > lo)) || { lo=1025; hi=$((eph_lo - 1)); }
    for _ in $(seq 100); do
        p=$((lo + (RANDOM * 32768 + RANDOM) % (hi - lo + 1)))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then echo "$p"; return; fi
    done
    die "no free loopback port found below $eph_lo"
}
write_config() {  # write_config <port>
    {
        printf 'upstox:\n  api_base: "%s"\n' "$BASE"
        printf 'token:\n  path: tokens/t1.json\n  backups: []\n'
        printf 'renew:\n  strategy: none\n'
        printf 'server:\n  listen: "127.0.0.1:%s"\n' "$1"
        printf 'log:\n  level: info\n'
        if ((N > 1)); then
            printf 'accounts:\n'
            for ((i = 2; i <= N; i++)); do
                printf '  a%d: { token: { path: tokens/t%d.json } }\n' "$i" "$i"
            done
        else
            printf 'accounts: {}\n'
        fi
    } >"$WORK/tokenwatch.yaml"
}

# ---- daemon start: exec -> /healthz 200 -------------------------------------------------------
# One GET over /dev/tcp; prints the status code, or nothing when nothing answers.
http_status() {  # http_status <port> <path>
    (
        exec 3<>"/dev/tcp/127.0.0.1/$1" || exit 0
        printf 'GET %s HTTP/1.1\r\nHost: 127.0.0.1:%s\r\nConnection: close\r\n\r\n' "$2" "$1" >&3
        IFS=' ' read -r -t 5 _ code _ <&3 || exit 0
        echo "$code"
    ) 2>/dev/null
}

HEALTHY="" T0="" PORT=""
for attempt in 1 2 3; do
    PORT=$(pick_port)
    write_config "$PORT"
    : >"$WORK/daemon.log"
    T0=$EPOCHREALTIME
    (run_clean "$BIN" --config "$WORK/tokenwatch.yaml" daemon) 2>"$WORK/daemon.log" >/dev/null &
    TW_PID=$!
    deadline=$((${T0%.*} + 120))
    while kill -0 "$TW_PID" 2>/dev/null && ((${EPOCHREALTIME%.*} < deadline)); do
        if [[ $(http_status "$PORT" /healthz) == 200 ]]; then HEALTHY=$EPOCHREALTIME; break; fi
        sleep 0.01
    done
    [[ -n $HEALTHY ]] && break
    if ! kill -0 "$TW_PID" 2>/dev/null && grep -q "is in use" "$WORK/daemon.log"; then
        echo "measure-fleet: port $PORT was taken (attempt $attempt); trying another" >&2
        wait "$TW_PID" 2>/dev/null || true
        TW_PID=""
        continue
    fi
    tail -n 20 "$WORK/daemon.log" >&2
    die "the daemon did not answer /healthz with 200 within 120 s"
done
[[ -n $HEALTHY ]] || die "no free port for the daemon after 3 attempts"

# ---- first checks --------------------------------------------------------------------------
# Each account logs one of these after its first validation round (worker.rs, validate).
OUTCOME='Token valid|Token invalid|Upstox confirms the token has expired|Cannot reach the Upstox API|The API refused the validation|The API still accepts'
checked() { grep -cE "$OUTCOME" "$WORK/daemon.log" || true; }
deadline=$(( ${T0%.*} + TIMEOUT ))
while (( $(checked) < N )); do
    kill -0 "$TW_PID" 2>/dev/null || { tail -n 20 "$WORK/daemon.log" >&2; die "the daemon exited during the first checks"; }
    if ((${EPOCHREALTIME%.*} >= deadline)); then
        echo "measure-fleet: only $(checked) of $N first checks after ${TIMEOUT}s; measuring anyway" >&2
        break
    fi
    sleep 0.1
done
status_field() { awk -v k="$1:" '$1 == k { print $2 }' "/proc/$TW_PID/status"; }
HWM_CHECKED=$(status_field VmHWM) RSS_CHECKED=$(status_field VmRSS) THREADS_CHECKED=$(status_field Threads)
FDS_CHECKED=$(find "/proc/$TW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)

# ---- idle window -------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
ticks() { sed 's/.*) //' "/proc/$TW_PID/stat" | awk '{ print $12 + $13 }'; }
# Per thread: "<tid> <CPU ns from schedstat> <voluntary context switches>". Threads come and
# go (tokio's blocking pool), so the window's figures are summed per thread id: a thread
# that exits in the window takes its share with it, one born in it counts from zero.
per_thread() {  # per_thread <file>
    {
        grep -H '' /proc/"$TW_PID"/task/*/schedstat 2>/dev/null | sed 's/:/ /' | awk '{ print "ns", $1, $2 }'
        grep -H '^voluntary_ctxt_switches:' /proc/"$TW_PID"/task/*/status 2>/dev/null | awk '{ print "cs", $1, $2 }'
    } | awk '{ split($2, p, "/"); print $1, p[5], $3 }' >"$1"
}
delta() {  # delta <kind> <before> <after>: the sum over threads alive at the end
    awk -v k="$1" '$1 != k { next } NR == FNR { a[$2] = $3; next } { d += $3 - ($2 in a ? a[$2] : 0) } END { printf "%d\n", d }' "$2" "$3"
}
STARTUP_TICKS=$(ticks)
# Tokio ends an idle blocking-pool thread after 10 s; the default settling outlasts that.
sleep "$SETTLE"
kill -0 "$TW_PID" 2>/dev/null || die "the daemon exited while settling"
THREADS_W0=$(status_field Threads)
per_thread "$WORK/threads.0"
w0=$EPOCHREALTIME tk0=$(ticks)
sleep "$WINDOW"
kill -0 "$TW_PID" 2>/dev/null || die "the daemon exited during the idle window"
tk1=$(ticks) w1=$EPOCHREALTIME
per_thread "$WORK/threads.1"
ns=$(delta ns "$WORK/threads.0" "$WORK/threads.1") cs=$(delta cs "$WORK/threads.0" "$WORK/threads.1")
HWM_END=$(status_field VmHWM) RSS_END=$(status_field VmRSS) THREADS_END=$(status_field Threads)
FDS_END=$(find "/proc/$TW_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)

# The outcome as /metrics sees it (one scrape, after the window).
metrics=$(curl -sSf "http://127.0.0.1:$PORT/metrics" || true)
VALID=$(awk '/^tokenwatch_token_valid\{/ && $NF == 1 { n++ } END { print n + 0 }' <<<"$metrics")

# ---- logs ----------------------------------------------------------------------------------
epoch() { date -d "$1" +%s.%N; }   # RFC 3339 (tracing's timestamps) -> epoch seconds
first_ts() { grep -E "$1" "$2" | head -n1 | awk '{ print $1 }'; }
last_ts() { grep -E "$1" "$2" | tail -n1 | awk '{ print $1 }'; }
FIRST_OK=$(first_ts "$OUTCOME" "$WORK/daemon.log") LAST_OK=$(last_ts "$OUTCOME" "$WORK/daemon.log")
N_CHECKED=$(checked)
N_VALID_LOG=$(grep -c 'Token valid' "$WORK/daemon.log" || true)
RETRIES=$(grep -c 'attempt' "$WORK/daemon.log" || true)
# Profile calls in the simulator's log: "... path=/v2/user/profile status=200".
PROFILE='path=/v2/user/profile'
P_TOTAL=$(grep -c "$PROFILE" "$WORK/sim.log" || true)
P_OK=$(grep "$PROFILE" "$WORK/sim.log" | grep -c 'status=200' || true)
P_PEAK=$(grep "$PROFILE" "$WORK/sim.log" | cut -c1-19 | uniq -c | sort -rn | awk 'NR == 1 { print $1 + 0 } END { if (NR == 0) print 0 }')
P_FIRST=$(first_ts "$PROFILE" "$WORK/sim.log") P_LAST=$(last_ts "$PROFILE" "$WORK/sim.log")

t_first=NaN t_last=NaN p_span=0
[[ -n $FIRST_OK ]] && t_first=$(awk -v a="$(epoch "$FIRST_OK")" -v b="$T0" 'BEGIN { printf "%.3f", a - b }')
[[ -n $LAST_OK ]] && t_last=$(awk -v a="$(epoch "$LAST_OK")" -v b="$T0" 'BEGIN { printf "%.3f", a - b }')
[[ -n $P_FIRST ]] && p_span=$(awk -v a="$(epoch "$P_FIRST")" -v b="$(epoch "$P_LAST")" 'BEGIN { printf "%.3f", b - a }')

# ---- report --------------------------------------------------------------------------------
awk -v n="$N" -v t0="$T0" -v th="$HEALTHY" -v tf="$t_first" -v tl="$t_last" \
    -v hwm="$HWM_CHECKED" -v rss="$RSS_CHECKED" -v thr="$THREADS_CHECKED" -v fds="$FDS_CHECKED" \
    -v hwm2="$HWM_END" -v rss2="$RSS_END" -v thr2="$THREADS_END" -v fds2="$FDS_END" \
    -v hz="$HZ" -v st="$STARTUP_TICKS" -v w0="$w0" -v w1="$w1" -v tk="$((tk1 - tk0))" \
    -v ns="$ns" -v cs="$cs" -v thw0="$THREADS_W0" -v settle="$SETTLE" \
    -v checked="$N_CHECKED" -v vlog="$N_VALID_LOG" -v valid="$VALID" -v retries="$RETRIES" \
    -v ptot="$P_TOTAL" -v pok="$P_OK" -v ppeak="$P_PEAK" -v pspan="$p_span" \
    -v nofile="$NOFILE_USED" -v bin="$BIN" '
BEGIN {
    w = w1 - w0
    printf "tokenwatch daemon, %d account(s): %s\n", n, bin
    printf "open-file limit %s, CLK_TCK %d, idle window %.1f s after %d s settling\n\n", nofile, hz, w, settle
    printf "%-44s %s\n", "measure", "value"
    printf "%-44s %.1f ms\n", "(a) exec -> /healthz 200", 1000 * (th - t0)
    printf "%-44s %s s\n", "    exec -> first account checked", tf
    printf "%-44s %s s  (%d of %d checked, %d valid)\n", "    exec -> all first checks done", tl, checked, n, vlog
    printf "%-44s %.1f MB  (VmRSS %.1f MB, %d threads, %d fds)\n", "(b) peak RSS (VmHWM) after first checks", hwm / 1024, rss / 1024, thr, fds
    printf "%-44s %.1f MB  (VmRSS %.1f MB, %d threads, %d fds)\n", "    peak RSS after the idle window", hwm2 / 1024, rss2 / 1024, thr2, fds2
    printf "%-44s %d at its start, %d at its end\n", "    threads in the idle window", thw0, thr2
    printf "%-44s %.0f ms\n", "    CPU from exec to all checked (ticks)", 1000 * st / hz
    printf "%-44s %.1f ms/min  (%d ticks)\n", "(c) idle CPU, utime+stime", (w > 0 ? 1000 * tk / hz * 60 / w : 0), tk
    printf "%-44s %.2f ms/min  (%.4f%% of a core)\n", "    idle CPU, schedstat", (w > 0 ? ns / 1e6 * 60 / w : 0), (w > 0 ? 100 * ns / 1e9 / w : 0)
    printf "%-44s %.2f /s\n", "    voluntary context switches", (w > 0 ? cs / w : 0)
    if (ptot > 0) {
        mean = pspan >= 1 ? sprintf(", mean %.0f/s", ptot / pspan) : ""
        printf "%-44s %d in the busiest second%s; first to last call %.3f s\n", "(d) simulator profile calls/s at start-up", ppeak, mean, pspan
        printf "%-44s %d (%d answered 200)\n", "    profile calls in all", ptot, pok
    } else {
        printf "%-44s %s\n", "(d) simulator profile calls/s at start-up", "none logged"
    }
    printf "%-44s %d\n", "    retries logged by the daemon", retries
    printf "%-44s %d of %d\n", "    tokenwatch_token_valid == 1 in /metrics", valid, n
}'
# Anything the daemon logged above INFO, folded over accounts.
if grep -qE ' (WARN|ERROR) ' "$WORK/daemon.log"; then
    echo
    echo "daemon warnings and errors (count, message with the account removed):"
    grep -E ' (WARN|ERROR) ' "$WORK/daemon.log" | cut -d' ' -f2- | sed -E 's/account=[^ :]*:? ?//; s/[0-9]+/#/g' \
        | sort | uniq -c | sort -rn | head -n 10
fi
