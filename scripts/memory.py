#!/usr/bin/env python3
"""Measure the server's memory: idle, per idle WebSocket connection, and after churn.

`memory.py [--conns N] [--churn M] [--label TEXT] -- SERVER_COMMAND...` starts the
server (it must print `listening on HOST:PORT`), then reads /proc/PID/status
(VmRSS, Threads) and /proc/PID/smaps_rollup (Pss, Private_Clean + Private_Dirty):

  idle       right after the server answers GET /health
  conns      with N idle WebSocket connections open (handshake done)
  closed     after those N closed
  churn      after M more connections opened together and closed again

It prints one line per stage and a per-connection figure, and stops the server
with SIGTERM. Under qemu-arm the process is qemu's: its figures include the
emulator itself (its translated-code cache and its own heap).
"""

import json
import os
import signal
import socket
import sys
import time

sys.dont_write_bytecode = True  # keep scripts/ free of __pycache__
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WebSocket, start_server  # noqa: E402

PATIENCE = 300.0


def proc_figures(pid):
    """VmRSS, Rss, Private and Threads of process PID, in KiB (threads: a count)."""
    out = {}
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "Threads"):
                out[key] = int(value.split()[0])
    private = 0
    with open("/proc/%d/smaps_rollup" % pid) as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("Private_Clean", "Private_Dirty", "Private_Hugetlb"):
                private += int(value.split()[0])
            elif key in ("Rss", "Pss"):
                out[key] = int(value.split()[0])
    out["Private"] = private
    return out


def health(port):
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise IOError("health: %r" % head[:80])
    return json.loads(body)


def wait_threads(pid, cond, what):
    """Poll the thread count until cond(threads) holds; False after PATIENCE."""
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if cond(proc_figures(pid)["Threads"]):
            return True
        time.sleep(0.05)
    print("  (warning: timed out waiting for %s)" % what)
    return False


def show(label, fig):
    print("%-30s VmRSS %6d KiB  Pss %6d KiB  Private %6d KiB  threads %4d"
          % (label, fig["VmRSS"], fig["Pss"], fig["Private"], fig["Threads"]))


def open_conns(port, n):
    conns = []
    for _ in range(n):
        conns.append(WebSocket("127.0.0.1", port, timeout=PATIENCE))
    return conns


def measure(cmd, conns, churn, label):
    proc, port = start_server(cmd, PATIENCE)
    pid = proc.pid
    try:
        print("== %s: %s" % (label, " ".join(cmd)))
        health(port)
        idle = proc_figures(pid)
        show("idle", idle)
        base_threads = idle["Threads"]

        socks = open_conns(port, conns)
        wait_threads(pid, lambda t: t >= base_threads + conns, "a thread per connection")
        h = health(port)
        with_conns = proc_figures(pid)
        show("%d idle connections" % conns, with_conns)
        print("  /health connections: %s" % h.get("connections"))
        for k in ("VmRSS", "Private"):
            per = (with_conns[k] - idle[k]) * 1024.0 / conns
            print("  per connection %-8s %8.1f KiB" % (k + ":", per / 1024.0))
        for s in socks:
            s.close()
        wait_threads(pid, lambda t: t <= base_threads, "connection threads to end")
        show("after closing them", proc_figures(pid))

        socks = open_conns(port, churn)
        wait_threads(pid, lambda t: t >= base_threads + churn, "a thread per connection")
        show("%d connections open" % churn, proc_figures(pid))
        for s in socks:
            s.close()
        wait_threads(pid, lambda t: t <= base_threads, "connection threads to end")
        show("after %d opened and closed" % churn, proc_figures(pid))

        proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=PATIENCE)
        print("  exit code after SIGTERM: %s" % rc)
    finally:
        if proc.poll() is None:
            proc.kill()


def main(argv):
    conns, churn, label = 200, 500, "server"
    args = argv[1:]
    while args and args[0] != "--":
        opt = args.pop(0)
        if opt == "--conns":
            conns = int(args.pop(0))
        elif opt == "--churn":
            churn = int(args.pop(0))
        elif opt == "--label":
            label = args.pop(0)
        else:
            print(__doc__, file=sys.stderr)
            return 2
    if not args or len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    measure(args[1:], conns, churn, label)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
