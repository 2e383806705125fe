#!/usr/bin/env python3
"""Is a connection thread's stack big enough for the worst input? (stdlib only)

`stack_probe.py STACK -- SERVER_COMMAND...` starts the server with
`--thread-stack-size STACK` appended, and sends every input we know to go
deepest on a connection thread: JSON nested around serde_json's limit of 128
and far beyond it in every place the edge reads (acl, params, names, unknown
members, id, jsonrpc, broken text), strings over every cap, and every method
(the Controller's too) once, over WebSocket on /jsonrpc and /room and over POST
/jsonrpc. It exits 0 if the server is still answering at the end, 1 if it died
(a stack overflow kills the process), 2 if it would not start (a stack the
settings refuse).

The smallest `thread_stack_size` the settings accept is set from what this
measured (debug, release and armv7 under qemu-arm); see `Config::validate`.
For a bisection below that minimum, lower the minimum in a local build.

`stack_probe.py --touched -- SERVER_COMMAND...` measures instead of bisecting:
it gives connection threads a stack of a size nothing else in the process has,
sends the same inputs (and a message of the longest text, delivered back to its
sender), and prints how many KiB of each such stack are resident, read from
`/proc/PID/smaps` while the connections are still open: the deepest a
connection thread went, to a page. Under `qemu-arm` the PID is the emulator's,
which holds the guest's memory as its own, so this works for armv7 too. It
exits 1 if that is more than half the smallest stack the settings accept
(`scripts/armv7.sh stack`, run by CI, checks the armv7 build this way).
"""

import json
import socket
import subprocess
import sys
import time

from wsclient import Rpc, WebSocket, start_server


def deep_inputs():
    inputs = []
    for depth in (100, 126, 127, 128, 129, 10000):
        arrays = "[" * depth + "]" * depth
        objects = '{"a":' * depth + "1" + "}" * depth
        for nest in (arrays, objects):
            for params in (
                '{"user":"A","room":"R","secure":"secure","acl":%s}' % nest,
                '{"user":"A","room":"R","secure":"secure","acl":["*",%s]}' % nest,
                '{"user":%s,"room":"R"}' % nest,
                '{"user":"A","room":"R","x":%s}' % nest,
                nest,
            ):
                for method in ("Messenger.1.join", "joinRoom", "Messenger.1.register",
                               "register", "Controller.1.activate"):
                    inputs.append('{"jsonrpc":"2.0","id":1,"method":"%s","params":%s}'
                                  % (method, params))
            inputs.append('{"jsonrpc":"2.0","id":%s,"method":"x"}' % nest)
            inputs.append('{"jsonrpc":%s,"id":1,"method":"x"}' % nest)
            inputs.append('{"jsonrpc":"2.0","id":1,"method":%s}' % nest)
        inputs.append("[" * depth)
        inputs.append('{"a":' * depth)
    return inputs


def long_inputs():
    long = "x" * 60000
    calls = [
        ("join", {"user": long, "room": "R"}),
        ("join", {"user": "A", "room": long}),
        ("join", {"user": "A", "room": "R", "secure": "secure", "acl": [long]}),
        ("join", {"user": "A", "room": "R", "secure": "secure", "acl": ["*"] * 2000}),
        ("register", {"event": "roomupdate", "id": long}),
        ("listen", {"room": "R", "id": long}),
        ("sendto", {"roomid": "0" * 20, "user": long, "message": "m"}),
        ("send", {"roomid": long, "message": "m"}),
        ("exists", {"method": long}),
    ]
    return [json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Messenger.1." + m, "params": p})
            for m, p in calls]


def every_method():
    calls = [("join", {"user": "A", "room": "R"}), ("rooms", {}), ("whoami", {}),
             ("roomstatus", {"room": "R"}), ("isonline", {"user": "A"}),
             ("listen", {"room": "R", "id": "l"}), ("silence", {"room": "R", "id": "l"}),
             ("register", {"event": "roomupdate", "id": "r"}), ("versions", {}),
             ("announce", {"room": "R", "message": "m"}), ("evict", {"room": "R", "user": "A"})]
    return [json.dumps({"jsonrpc": "2.0", "id": 1, "method": "Messenger.1." + m, "params": p})
            for m, p in calls]


def controller_calls():
    long = "x" * 20000
    calls = [("status", None), ("Controller.1.status@Messenger", None),
             ("register", {"event": "statechange", "id": "temporary2"}),
             ("unregister", {"event": "statechange", "id": "temporary2"}),
             ("register@" + long, {"event": long, "id": long}),
             ("Controller.1.activate", {"callsign": "Messenger"}),
             ("deactivate@Messenger", None), ("Nonexistent.1.x", None)]
    return [json.dumps({"jsonrpc": "2.0", "id": 1, "method": m, "params": p}) for m, p in calls]


def post(port, body):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    data = body.encode()
    s.sendall(b"POST /jsonrpc HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
              b"Content-Length: %d\r\n\r\n" % len(data) + data)
    reply = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        reply += chunk
    s.close()
    if not reply.startswith(b"HTTP/1.1 "):
        raise IOError("no HTTP answer")


def largest_message(port):
    """On a new connection, join a room, register for its messages and send a message of
    the longest text allowed (64 KiB), so the connection also receives it."""
    ws = WebSocket("127.0.0.1", port, protocol="jsonrpc", timeout=30)
    rpc = Rpc(ws)
    roomid = rpc.call("join", {"user": "deep", "room": "deep"})
    roomid = roomid["roomid"] if isinstance(roomid, dict) else roomid
    rpc.call("register", {"event": "message", "id": "deep"})
    rpc.call("send", {"roomid": roomid, "message": "x" * 65536})
    return ws


def probe(port):
    """Every input on a Messenger and a Kurento WebSocket and over POST, then the largest
    message; returns the WebSockets still open, so their threads (and stacks) are there."""
    messenger = WebSocket("127.0.0.1", port, protocol="jsonrpc", timeout=30)
    kurento = WebSocket("127.0.0.1", port, path="/room", protocol=None, timeout=30)
    for text in deep_inputs() + long_inputs() + every_method() + controller_calls():
        for ws in (messenger, kurento):
            ws.send_text(text)
            ws.recv_text()
        post(port, text)
    return messenger, kurento, largest_message(port)


# The stack size `--touched` gives connection threads: one no other mapping of the process has.
TOUCHED_STACK = 960 * 1024


def stack_pages(pid):
    """Resident KiB of every mapping of TOUCHED_STACK bytes in /proc/PID/smaps (under qemu-arm
    PID is the emulator's, which maps the guest's memory as its own)."""
    found, size = [], None
    with open("/proc/%d/smaps" % pid) as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                start, end = (int(x, 16) for x in fields[0].split("-"))
                size = end - start if fields[1].startswith("rw") else None
            elif fields[0] == "Rss:" and size == TOUCHED_STACK:
                found.append(int(fields[1]))
    return found


def touched(cmd):
    """The deepest stack a connection thread touches: every input of `probe`, then the
    resident pages of the connection threads' stacks. A page once touched stays resident
    while its thread lives (and after, on a stack glibc caches for reuse, the top 16 KiB:
    the `POST` threads' stacks), so the largest figure is the deepest path, to a page,
    with the thread's control block and TLS at the top of the stack counted in."""
    proc, port = start_server(cmd + ["--thread-stack-size", str(TOUCHED_STACK)], 60)
    try:
        idle = WebSocket("127.0.0.1", port, protocol="jsonrpc", timeout=30)
        Rpc(idle).call("versions", {})
        before = stack_pages(proc.pid)
        sockets = probe(port)
        time.sleep(0.2)
        after = stack_pages(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    if not after:
        print("no mapping of %d bytes found: cannot tell" % TOUCHED_STACK)
        return 1
    print("stack touched by a connection thread: %d KiB after one request, %d KiB deepest "
          "(stacks of %d KiB, touched KiB: %s)"
          % (max(before), max(after), TOUCHED_STACK // 1024, " ".join(map(str, sorted(after)))))
    if max(after) >= 16:
        print("note: 16 KiB or more: a POST thread's pages below the top 16 KiB are returned "
              "when it ends, so its part of this figure is a lower bound")
    del sockets
    least = smallest_stack(cmd)
    if least is None:
        print("could not learn the smallest thread_stack_size the server accepts")
        return 1
    margin_ok = max(after) * 1024 * 2 <= least
    print("smallest accepted stack %d KiB: %d KiB unused on the deepest path (%s: at most half "
          "may be used)" % (least // 1024, least // 1024 - max(after), "ok" if margin_ok else "FAIL"))
    return 0 if margin_ok else 1


def smallest_stack(cmd):
    """The least `thread_stack_size` the server accepts, from its refusal of 1 byte."""
    out = subprocess.run(cmd + ["--thread-stack-size", "1"], capture_output=True, text=True,
                         timeout=60)
    words = (out.stdout + out.stderr).split()
    for i, word in enumerate(words[:-1]):
        if word == "allowed" and words[i + 1].isdigit():
            return int(words[i + 1])
    return None


def main(argv):
    if len(argv) >= 3 and argv[1:3] == ["--touched", "--"]:
        return touched(argv[3:])
    if len(argv) < 4 or argv[2] != "--":
        print("usage: stack_probe.py STACK|--touched -- SERVER_COMMAND...", file=sys.stderr)
        return 2
    stack, cmd = argv[1], argv[3:] + ["--thread-stack-size", argv[1]]
    try:
        proc, port = start_server(cmd, 60)
    except SystemExit as e:
        print("stack %s: server did not start (%s)" % (stack, e))
        return 2
    try:
        probe(port)
        time.sleep(0.2)
        post(port, '{"jsonrpc":"2.0","id":1,"method":"Messenger.1.versions"}')
        alive = proc.poll() is None
    except (IOError, OSError, EOFError) as e:
        print("stack %s: %s" % (stack, e))
        alive = False
    finally:
        if proc.poll() is None:
            proc.kill()
    print("stack %s: %s" % (stack, "survived" if alive else "DIED (%s)" % proc.wait()))
    return 0 if alive else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
