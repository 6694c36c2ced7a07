#!/usr/bin/env bash
# measure-idle.sh: what the tokenwatch dashboard costs while idle, next to htop.
#
# The dashboard draws only on an event, a key or the countdown's second changing,
# so while idle it should wake about once a second and cost next to nothing. This script runs
# `tokenwatch demo` (the dashboard against the in-process simulator: no credentials, no
# network) and `htop` side by side, each in its own detached 120x36 tmux session, and compares:
#   - CPU time: utime+stime from /proc/<pid>/stat (all threads), in clock ticks (getconf CLK_TCK)
#   - peak RSS: VmHWM from /proc/<pid>/status
#   - wakeups: voluntary context switches per second, summed over /proc/<pid>/task/*/status
#     (/proc/<pid>/status alone counts only the main thread; both are printed for tokenwatch).
#
# Usage: scripts/measure-idle.sh [--install] [--seconds N]
#   --install    run `cargo build --release` if the binary is missing or older than the
#                sources, and apt-get install htop/tmux if missing; without it, the script
#                stops and says what is missing.
#   --seconds N  length of the measuring window (default 60), after 5 s of settling.
#
# Idempotent: it uses a fixed tmux socket (-L tokenwatch-idle), kills whatever an interrupted
# earlier run left on it, and removes its sessions and temporary HOME on any exit.
set -euo pipefail

WINDOW=60          # seconds measured
SETTLE=5           # seconds to let both programs start up before the first sample
INSTALL=0
SOCKET=tokenwatch-idle
COLS=120 ROWS=36

while (($#)); do
    case $1 in
        --install) INSTALL=1 ;;
        --seconds)
            [[ ${2:-} =~ ^[1-9][0-9]*$ ]] || { echo "measure-idle: --seconds needs a positive whole number" >&2; exit 2; }
            WINDOW=$2; shift ;;
        -h|--help) sed -n '2,/^set -euo/{/^#/s/^# \{0,1\}//p}' "$0"; exit 0 ;;
        *) echo "measure-idle: unknown argument '$1' (try --help)" >&2; exit 2 ;;
    esac
    shift
done

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${TOKENWATCH_BIN:-$ROOT/target/release/tokenwatch}  # TOKENWATCH_BIN measures another build
unset TMUX  # never talk to a tmux server we may be running inside

# ---- prerequisites -----------------------------------------------------------------------
missing=()
for tool in tmux htop getconf pgrep; do
    command -v "$tool" >/dev/null || missing+=("$tool")
done
if ((${#missing[@]})); then
    if ((INSTALL)); then
        pkgs=()  # getconf is in libc-bin, pgrep in procps
        for tool in "${missing[@]}"; do
            case $tool in getconf) pkgs+=(libc-bin) ;; pgrep) pkgs+=(procps) ;; *) pkgs+=("$tool") ;; esac
        done
        sudo=(); ((EUID == 0)) || sudo=(sudo)
        "${sudo[@]}" apt-get update -qq
        DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${pkgs[@]}" >/dev/null
    else
        echo "measure-idle: not installed: ${missing[*]}; rerun with --install to apt-get it, or install it yourself" >&2
        exit 1
    fi
fi

# The release binary is rebuilt when missing or older than anything that goes into it.
stale=""
if [[ -n ${TOKENWATCH_BIN:-} ]]; then
    [[ -x $BIN ]] || { echo "measure-idle: TOKENWATCH_BIN=$BIN is not an executable" >&2; exit 1; }
elif [[ ! -x $BIN ]]; then
    stale="$BIN does not exist"
elif newer=$(find "$ROOT/src" "$ROOT/assets" "$ROOT/Cargo.toml" "$ROOT/Cargo.lock" \
                  -newer "$BIN" -print -quit 2>/dev/null) && [[ -n $newer ]]; then
    stale="$BIN is older than ${newer#"$ROOT"/}"
fi
if [[ -n $stale ]]; then
    if ((INSTALL)); then
        (cd "$ROOT" && cargo build --release --quiet)
    else
        echo "measure-idle: $stale; run 'cargo build --release', or rerun with --install" >&2
        exit 1
    fi
fi

# ---- sessions ------------------------------------------------------------------------------
tm() { tmux -L "$SOCKET" -f /dev/null "$@"; }
tm kill-server 2>/dev/null || true   # leftovers of an interrupted run

WORK=$(mktemp -d "${TMPDIR:-/tmp}/measure-idle.XXXXXX")
cleanup() {
    tm kill-server 2>/dev/null || true   # SIGHUP to both programs; tokenwatch exits on it
    # Give them a moment to exit (the demo removes its own folder under $WORK) before the rm.
    for _ in 1 2 3 4 5 6 7 8 9 10; do
        kill -0 "${TW_PID:-0}" 2>/dev/null || kill -0 "${HT_PID:-0}" 2>/dev/null || break
        sleep 0.2
    done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# Each program is started through `env`, which execs it: the pane's pid is the program's pid.
# HOME and TMPDIR point at $WORK so neither program touches the real home (htop writes its
# htoprc there; the demo makes its temporary folder under TMPDIR).
start() {  # start <session> <program> [args...]
    local name=$1; shift
    tm new-session -d -s "$name" -x "$COLS" -y "$ROWS" \
        env LANG=C.UTF-8 TERM=xterm-256color HOME="$WORK" TMPDIR="$WORK" "$@"
}
start tw "$BIN" demo --expires-in 30m
start ht htop

# The pid of the program itself (not tmux, not a shell): the pane's pid once env has exec'd,
# or its child named <comm> if something in between did not exec.
program_pid() {  # program_pid <session> <comm>
    local pane pid
    pane=$(tm display-message -p -t "$1" '#{pane_pid}')
    for _ in $(seq 50); do
        if [[ $(cat "/proc/$pane/comm" 2>/dev/null) == "$2" ]]; then echo "$pane"; return; fi
        if pid=$(pgrep -P "$pane" -x "$2" | head -n1) && [[ -n $pid ]]; then echo "$pid"; return; fi
        sleep 0.1
    done
    echo "measure-idle: no '$2' process under tmux session '$1' (pane pid $pane):" >&2
    tm capture-pane -p -t "$1" >&2 || true
    exit 1
}
TW_PID=$(program_pid tw tokenwatch)
HT_PID=$(program_pid ht htop)

# ---- sampling ------------------------------------------------------------------------------
HZ=$(getconf CLK_TCK)
# utime+stime of the whole process, in ticks. Fields after "pid (comm) " start at field 3,
# so utime (14) and stime (15) are the 12th and 13th; comm may hold spaces, hence the sed.
ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; }
# CPU time in nanoseconds from the scheduler (first field of schedstat), summed over the
# threads alive now: far finer than ticks, which count in 10 ms steps.
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ n += $1 } END { printf "%d\n", n }'; }
status_field() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/status"; }  # status_field <pid> <key>
# Voluntary context switches summed over the threads alive now (a thread that exits in the
# window takes its count with it; the thread counts printed below show whether any did).
vcsw_all() { cat /proc/"$1"/task/*/status 2>/dev/null | awk '$1 == "voluntary_ctxt_switches:" { n += $2 } END { print n + 0 }'; }
alive() { kill -0 "$1" 2>/dev/null || { echo "measure-idle: $2 (pid $1) exited early:" >&2; tm capture-pane -p -t "$3" >&2 || true; exit 1; }; }

sleep "$SETTLE"
alive "$TW_PID" tokenwatch tw; alive "$HT_PID" htop ht
t0=$(date +%s.%N)
tw0=$(ticks "$TW_PID") ht0=$(ticks "$HT_PID") twn0=$(cpu_ns "$TW_PID") htn0=$(cpu_ns "$HT_PID")
twv0=$(vcsw_all "$TW_PID") twm0=$(status_field "$TW_PID" voluntary_ctxt_switches) htv0=$(vcsw_all "$HT_PID")
twth0=$(status_field "$TW_PID" Threads)

sleep "$WINDOW"
alive "$TW_PID" tokenwatch tw; alive "$HT_PID" htop ht
t1=$(date +%s.%N)
tw1=$(ticks "$TW_PID") ht1=$(ticks "$HT_PID") twn1=$(cpu_ns "$TW_PID") htn1=$(cpu_ns "$HT_PID")
twv1=$(vcsw_all "$TW_PID") twm1=$(status_field "$TW_PID" voluntary_ctxt_switches) htv1=$(vcsw_all "$HT_PID")
twth1=$(status_field "$TW_PID" Threads)
tw_hwm=$(status_field "$TW_PID" VmHWM) ht_hwm=$(status_field "$HT_PID" VmHWM)   # kB

# ---- report --------------------------------------------------------------------------------
size=$(tm display-message -p -t tw '#{window_width}x#{window_height}')
awk -v hz="$HZ" -v t0="$t0" -v t1="$t1" -v size="$size" \
    -v tw="$((tw1 - tw0))" -v ht="$((ht1 - ht0))" -v twk="$tw_hwm" -v htk="$ht_hwm" \
    -v twv="$((twv1 - twv0))" -v twm="$((twm1 - twm0))" -v htv="$((htv1 - htv0))" \
    -v th0="$twth0" -v th1="$twth1" -v twpid="$TW_PID" -v htpid="$HT_PID" \
    -v twn="$((twn1 - twn0))" -v htn="$((htn1 - htn0))" '
function ratio(a, b) { return b > 0 ? sprintf("%.2f", a / b) : "n/a" }
BEGIN {
    w = t1 - t0
    tws = tw / hz; hts = ht / hz
    printf "idle window %.1f s after %d s settling, terminals %s, CLK_TCK %d\n\n", w, '"$SETTLE"', size, hz
    printf "%-10s %7s %6s %10s %8s %10s %12s\n", "program", "pid", "ticks", "CPU s", "% core", "peak RSS", "vol. csw/s"
    printf "%-10s %7d %6d %10.2f %7.3f%% %7.1f MB %12.1f\n", "tokenwatch", twpid, tw, tws, 100 * tws / w, twk / 1024, twv / w
    printf "%-10s %7d %6d %10.2f %7.3f%% %7.1f MB %12.1f\n", "htop", htpid, ht, hts, 100 * hts / w, htk / 1024, htv / w
    printf "%-10s %7s %6s %10s %8s %10s %12s\n", "ratio t/h", "", "", ratio(tw, ht), "", ratio(twk, htk), ratio(twv, htv)
    printf "\ntokenwatch: %d threads (%d at start); voluntary context switches %.1f/s in all threads, %.1f/s in the main thread\n", th1, th0, twv / w, twm / w
    printf "one tick = %.3f%% of a core over this window\n", 100 / hz / w
    printf "\nscheduler CPU time (schedstat, ns precision):\n"
    printf "%-10s %10.1f ms %9.4f%% of a core\n", "tokenwatch", twn / 1e6, 100 * twn / 1e9 / w
    printf "%-10s %10.1f ms %9.4f%% of a core\n", "htop", htn / 1e6, 100 * htn / 1e9 / w
    printf "%-10s %10s    %9s (tokenwatch / htop)\n", "ratio", ratio(twn, htn), ""
}'
