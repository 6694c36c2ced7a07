#!/usr/bin/env python3
"""key-latency.py: key-press-to-screen latency of the tokenwatch dashboard, in a real PTY.

Runs `tokenwatch demo` (the dashboard against the in-process simulator; no credentials, no
network) in a pseudo-terminal of the given size, waits for the first full screen, then
presses `?` (open the help) and measures the time from writing the key to the moment the
help's title ("Keys") arrives on the terminal's output; `Esc` closes it again and the next
press waits until the screen is quiet. The time covers everything a user waits for: the
kernel's tty, crossterm's input thread, the event loop, ratatui's render and diff, and the
write of the changed cells.

Usage: scripts/key-latency.py [--bin PATH] [--presses N] [--cols C] [--rows R]
(defaults: target/release/tokenwatch, 50 presses, 200x60). Prints min/median/p95/max in ms.
"""

import argparse
import fcntl
import os
import pty
import select
import signal
import statistics
import struct
import sys
import tempfile
import termios
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bin", default=os.path.join(ROOT, "target/release/tokenwatch"))
    ap.add_argument("--presses", type=int, default=50)
    ap.add_argument("--cols", type=int, default=200)
    ap.add_argument("--rows", type=int, default=60)
    args = ap.parse_args()
    if not os.access(args.bin, os.X_OK):
        print(f"key-latency: {args.bin} is not built; run `cargo build --release`", file=sys.stderr)
        return 1

    home = tempfile.TemporaryDirectory(prefix="tw-key-latency-")
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": home.name,
        "XDG_STATE_HOME": os.path.join(home.name, "state"),
        "XDG_CONFIG_HOME": os.path.join(home.name, "config"),
        "LANG": "C.UTF-8",
        "TERM": "xterm-256color",
        "COLORTERM": "truecolor",
    }
    pid, fd = pty.fork()
    if pid == 0:
        os.chdir(home.name)
        os.execve(args.bin, [args.bin, "demo", "--expires-in", "1h"], env)
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", args.rows, args.cols, 0, 0))
    os.kill(pid, signal.SIGWINCH)

    def read_until(marker: bytes, timeout: float) -> float | None:
        """Read output until `marker` shows up; the time it arrived, or None."""
        seen = b""
        end = time.perf_counter() + timeout
        while (left := end - time.perf_counter()) > 0:
            ready, _, _ = select.select([fd], [], [], left)
            if not ready:
                continue
            try:
                chunk = os.read(fd, 65536)
            except OSError:
                return None
            now = time.perf_counter()
            seen = (seen + chunk)[-4096:]
            if marker in seen:
                return now
        return None

    def drain(quiet: float) -> None:
        """Read until nothing arrives for `quiet` seconds."""
        while select.select([fd], [], [], quiet)[0]:
            try:
                os.read(fd, 65536)
            except OSError:
                return

    try:
        if read_until(b"HEALTHY", 15) is None:
            print("key-latency: the dashboard never showed HEALTHY", file=sys.stderr)
            return 1
        drain(0.5)
        samples = []
        for _ in range(args.presses):
            # Press between the once-a-second redraws, as a person would at any moment.
            start = time.perf_counter()
            os.write(fd, b"?")
            at = read_until(b"Keys", 5)
            if at is None:
                print("key-latency: the help never appeared", file=sys.stderr)
                return 1
            samples.append((at - start) * 1000)
            os.write(fd, b"\x1b")
            drain(0.3)
        samples.sort()
        p95 = samples[min(len(samples) - 1, int(len(samples) * 0.95))]
        print(
            f"key-to-screen ({args.cols}x{args.rows}, {len(samples)} presses): "
            f"min {samples[0]:.2f} ms, median {statistics.median(samples):.2f} ms, "
            f"p95 {p95:.2f} ms, max {samples[-1]:.2f} ms"
        )
        return 0
    finally:
        os.write(fd, b"q")
        time.sleep(0.5)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        os.waitpid(pid, 0)
        home.cleanup()


if __name__ == "__main__":
    sys.exit(main())
