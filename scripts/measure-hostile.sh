#!/usr/bin/env bash
# measure-hostile.sh: what a hostile Upstox stand-in and a local flood cost the release binary.
#
# Four cases, each in a temporary folder with HOME inside it:
#   1. endless answer: `tokenwatch status --validate` against a profile endpoint that sends a
#      chunked 200 answer forever (a small Python server); peak RSS (GNU time's %M) and wall
#      time until it gives up;
#   2. huge answer: the same against a 200 answer that declares Content-Length: 500000000 and
#      streams zeros;
#   3. forced refreshes: `tokenwatch daemon` (strategy none, the API on loopback) against
#      `tokenwatch simulate`; 300 POST /api/token/force-refresh at once (curl --parallel);
#      the answers by status, the profile calls the simulator served for them, /healthz's
#      answer time during the burst, the daemon's peak RSS (VmHWM);
#   4. idle flood: the same daemon started under `prlimit --nofile=1024:1024`; 1,100 idle
#      loopback connections to its API (held open by a Python client); /healthz's answer
#      time during the flood, the daemon's open descriptors, a forced check during the flood
#      (the worker still reaches Upstox), and its peak RSS.
#
# Usage: scripts/measure-hostile.sh [BINARY]
#   BINARY  the tokenwatch binary (default $TOKENWATCH_BIN, else target/release/tokenwatch)
#
# Needs bash 5, curl (7.66+ for --parallel), python3, GNU time (/usr/bin/time), prlimit.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=${1:-${TOKENWATCH_BIN:-$ROOT/target/release/tokenwatch}}
die() { echo "measure-hostile: $*" >&2; exit 1; }
[[ -x $BIN ]] || die "$BIN is not an executable; build it with 'cargo build --release' or pass another"
BIN=$(cd "$(dirname "$BIN")" && pwd)/$(basename "$BIN")
for tool in curl python3 prlimit /usr/bin/time; do
    command -v "$tool" >/dev/null || die "not installed: $tool"
done

umask 077
WORK=$(mktemp -d "${TMPDIR:-/tmp}/measure-hostile.XXXXXX")
PIDS=()
cleanup() {
    for pid in "${PIDS[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
    sleep 0.5
    for pid in "${PIDS[@]}"; do kill -KILL "$pid" 2>/dev/null || true; done
    rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
mkdir -p "$WORK/home"
cd "$WORK"
clean_env=(env -i PATH="$PATH" HOME="$WORK/home" LANG=C.UTF-8)

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
peak_kib() { awk '/^VmHWM:/ {print $2}' "/proc/$1/status"; }
mib() { awk -v k="$1" 'BEGIN { printf "%.1f MB", k / 1024 }'; }
now() { echo "$EPOCHREALTIME"; }
ms_since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.1f ms", (b - a) * 1000 }'; }

# ---- 1 and 2: answers that never end or are too big ----------------------------------------
cat >"$WORK/stub.py" <<'PY'
import http.server, sys
mode, port = sys.argv[1], int(sys.argv[2])
class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a): pass
    def do_GET(self):
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        chunk = b"0" * 65536
        try:
            if mode == "endless":
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                while True:
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            else:
                self.send_header("Content-Length", "500000000")
                self.end_headers()
                for _ in range(500000000 // len(chunk)):
                    self.wfile.write(chunk)
        except (BrokenPipeError, ConnectionResetError):
            pass
http.server.ThreadingHTTPServer(("127.0.0.1", port), H).serve_forever()
PY

answer_case() {  # answer_case <endless|huge>
    local mode=$1 port
    port=$(free_port)
    python3 "$WORK/stub.py" "$mode" "$port" &
    local stub=$!
    PIDS+=("$stub")
    for _ in $(seq 100); do (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
    mkdir -p "$WORK/$mode"
    cat >"$WORK/$mode/tokenwatch.yaml" <<YAML
upstox:
  api_base: "http://127.0.0.1:$port/"
token:
  path: "$WORK/$mode/token.json"
monitor:
  max_retries: 1
YAML
    printf '{"access_token":"eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiJBQjEyMzQifQ.c2lnbmF0dXJl","expires_at":"%s"}\n' \
        "$(date -u -d '+10 hours' +%Y-%m-%dT%H:%M:%SZ)" >"$WORK/$mode/token.json"
    local start out
    start=$(now)
    out=$("${clean_env[@]}" /usr/bin/time -f '%M' "$BIN" -c "$WORK/$mode/tokenwatch.yaml" status --validate 2>&1 >/dev/null | tail -1 || true)
    printf '%-28s peak RSS %s, gave up after %s\n' "$mode answer:" "$(mib "$out")" "$(ms_since "$start")"
    kill "$stub" 2>/dev/null || true
}
answer_case endless
answer_case huge

# ---- 3 and 4: a daemon against the simulator -----------------------------------------------
("${clean_env[@]}" "$BIN" -v simulate --listen 127.0.0.1:0 --token-lifetime 20h) \
    >"$WORK/sim.out" 2>"$WORK/sim.log" &
PIDS+=($!)
BASE=""
for _ in $(seq 500); do
    line=$(head -n1 "$WORK/sim.out" 2>/dev/null || true)
    if [[ $line == "Upstox simulator listening on "* ]]; then BASE=${line#Upstox simulator listening on }; break; fi
    sleep 0.01
done
[[ -n $BASE ]] || die "the simulator did not start"
BASE=${BASE%/}
profile_calls() { grep -c 'v2/user/profile' "$WORK/sim.log" || true; }

start_daemon() {  # start_daemon <name> [prlimit args...]: sets API and DAEMON
    local name=$1
    shift
    local port
    port=$(free_port)
    mkdir -p "$WORK/$name"
    curl -sSf -X POST "$BASE/sim/token" -o "$WORK/$name/token.json"
    cat >"$WORK/$name/tokenwatch.yaml" <<YAML
upstox:
  api_base: "$BASE/"
token:
  path: "$WORK/$name/token.json"
renew:
  strategy: none
server:
  listen: "127.0.0.1:$port"
YAML
    ("${clean_env[@]}" "$@" "$BIN" -c "$WORK/$name/tokenwatch.yaml" daemon) 2>"$WORK/$name/daemon.log" &
    DAEMON=$!
    PIDS+=("$DAEMON")
    API="http://127.0.0.1:$port"
    for _ in $(seq 500); do
        grep -q "Token valid" "$WORK/$name/daemon.log" 2>/dev/null && return 0
        sleep 0.02
    done
    cat "$WORK/$name/daemon.log" >&2
    die "the $name daemon did not check its token"
}

healthz_ms() { curl -s -o /dev/null -m 5 -w '%{time_total}' "$API/healthz" | awk '{ printf "%.1f ms", $1 * 1000 }'; }

start_daemon burst
sleep 5.5   # forced checks start at most once per 5 s
before=$(profile_calls)
urls=()
for _ in $(seq 300); do urls+=(-X POST "$API/api/token/force-refresh" -o /dev/null -w '%{http_code}\n'); done
(sleep 0.05; healthz_ms >"$WORK/healthz-burst") &
probe=$!
start=$(now)
codes=$(curl -s --no-progress-meter --parallel --parallel-immediate --parallel-max 300 "${urls[@]}" | sort | uniq -c | awk '{ printf "%s×%s ", $1, $2 }')
took=$(ms_since "$start")
wait "$probe"
sleep 1
echo "300 forced refreshes:        answers ${codes}in $took; profile calls $(($(profile_calls) - before)); /healthz meanwhile $(cat "$WORK/healthz-burst"); daemon peak RSS $(mib "$(peak_kib "$DAEMON")")"
kill -TERM "$DAEMON"

start_daemon flood prlimit --nofile=1024:1024
cat >"$WORK/flood.py" <<'PY'
import resource, socket, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
port, n = int(sys.argv[1]), int(sys.argv[2])
held = []
for _ in range(n):
    s = socket.socket()
    try:
        s.connect(("127.0.0.1", port))
        held.append(s)
    except OSError:
        s.close()
print(len(held), flush=True)
time.sleep(3600)
PY
python3 "$WORK/flood.py" "${API##*:}" 1100 >"$WORK/flood.out" &
FLOOD=$!
PIDS+=("$FLOOD")
for _ in $(seq 500); do [[ -s $WORK/flood.out ]] && break; sleep 0.02; done
sleep 1
fds=$(find "/proc/$DAEMON/fd" -mindepth 1 2>/dev/null | wc -l)
h=$(healthz_ms)
before=$(profile_calls)
sleep 5
code=$(curl -s -o /dev/null -m 10 -w '%{http_code}' -X POST "$API/api/token/force-refresh")
sleep 1
echo "1,100 idle connections:      connected $(cat "$WORK/flood.out"); daemon fds $fds of 1024; /healthz $h; forced check answered $code, profile calls $(($(profile_calls) - before)); daemon peak RSS $(mib "$(peak_kib "$DAEMON")")"
