#!/usr/bin/env python3
"""Room history's memory cost, measured from outside: the server's VmRSS before and after
sending N messages, with history off and on (stdlib only; uses wsclient.py).

usage: python3 scripts/history_memory.py [BINARY]   (default target/release/messenger)

Each case starts the server, joins one sender into R rooms, sends 2,000 messages to warm the
allocator, reads VmRSS, sends N more round-robin over the rooms (1,000 in flight), reads VmRSS
again, and prints the growth per message sent. With a budget larger than what is kept, that
is the cost of one kept message.
"""

import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from wsclient import WebSocket  # noqa: E402

MIB = 1 << 20


def vm_rss_kib(pid):
    with open("/proc/%d/status" % pid) as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def call(ws, method, params, ident=1):
    body = {"jsonrpc": "2.0", "id": ident, "method": "Messenger.1." + method, "params": params}
    ws.send_text(json.dumps(body))


def measure(binary, history, budget, n, text_len, rooms):
    cmd = [binary, "--listen", "127.0.0.1:0", "--key-file", "/tmp/history-memory-key",
           "--history", str(history), "--max-messages-per-second", "1e9",
           "--message-burst", "4000000000"]
    if budget:
        cmd += ["--history-bytes", str(budget), "--max-outbound-bytes", str(4 * budget)]
    server = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    try:
        port = int(server.stdout.readline().strip().rsplit(":", 1)[1])
        ws = WebSocket("127.0.0.1", port)
        tokens = []
        for r in range(rooms):
            call(ws, "join", {"user": "Sender", "room": "room%d" % r})
            tokens.append(json.loads(ws.recv_text())["result"]["roomid"])
        text = "x" * text_len

        def send(count):
            done = 0
            while done < count:
                batch = min(1000, count - done)
                for i in range(done, done + batch):
                    call(ws, "send", {"roomid": tokens[i % rooms], "message": text}, i)
                for _ in range(batch):
                    reply = json.loads(ws.recv_text())
                    assert "error" not in reply, reply
                done += batch

        send(2000)
        time.sleep(0.2)
        before = vm_rss_kib(server.pid)
        send(n)
        time.sleep(0.2)
        after = vm_rss_kib(server.pid)
        return before, after
    finally:
        server.terminate()
        server.wait()


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else "target/release/messenger"
    cases = [
        # history, budget (None: default), messages, text length, rooms
        (0, None, 100000, 60, 1),
        (1000000, 16 * MIB, 100000, 60, 1),
        (100, 16 * MIB, 100000, 60, 1000),
        (1000000, 16 * MIB, 50000, 500, 1),
        (1000, None, 100000, 60, 20),
        (1000, None, 800, 60000, 20),
    ]
    for history, budget, n, text_len, rooms in cases:
        before, after = measure(binary, history, budget, n, text_len, rooms)
        print("history %-7d budget %-8s %6d messages of %5d chars in %4d rooms: "
              "VmRSS %6d -> %6d KiB, %6.1f bytes per message sent"
              % (history, budget or "default", n, text_len, rooms, before, after,
                 (after - before) * 1024.0 / n))


if __name__ == "__main__":
    main()
