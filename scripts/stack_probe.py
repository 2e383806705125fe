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
"""

import json
import socket
import sys
import time

from wsclient import WebSocket, start_server


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


def probe(port):
    messenger = WebSocket("127.0.0.1", port, protocol="jsonrpc", timeout=30)
    kurento = WebSocket("127.0.0.1", port, path="/room", protocol=None, timeout=30)
    for text in deep_inputs() + long_inputs() + every_method() + controller_calls():
        for ws in (messenger, kurento):
            ws.send_text(text)
            ws.recv_text()
        post(port, text)


def main(argv):
    if len(argv) < 4 or argv[2] != "--":
        print("usage: stack_probe.py STACK -- SERVER_COMMAND...", file=sys.stderr)
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
