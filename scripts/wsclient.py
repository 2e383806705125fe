#!/usr/bin/env python3
"""Tiny WebSocket client (stdlib only) and the armv7 smoke test that uses it.

The client does just enough of RFC 6455 for our checks: the opening handshake
(with `Sec-WebSocket-Accept` verified), masked text frames out, and a frame reader
that answers pings and reports close frames with their code.

`wsclient.py smoke -- CMD...` starts the server with CMD (which must print
`listening on HOST:PORT`), joins a room, registers for messages, sends one and
waits for it to come back, then sends SIGTERM and checks that the client sees
close code 1001 and the server exits 0.
"""

import base64
import hashlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x1, 0x2, 0x8, 0x9, 0xA


class Closed(Exception):
    """The server sent a close frame; `code` is its status code (None if empty)."""

    def __init__(self, code, reason=""):
        super().__init__("closed with code %s %s" % (code, reason))
        self.code = code
        self.reason = reason


class WebSocket:
    """One client connection over a plain blocking socket."""

    def __init__(self, host, port, path="/jsonrpc", protocol="jsonrpc", timeout=30.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = b""
        self._handshake(host, port, path, protocol)

    def _handshake(self, host, port, path, protocol):
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            "GET %s HTTP/1.1" % path,
            "Host: %s:%d" % (host, port),
            "Upgrade: websocket",
            "Connection: Upgrade",
            "Sec-WebSocket-Key: " + key,
            "Sec-WebSocket-Version: 13",
        ]
        if protocol:
            lines.append("Sec-WebSocket-Protocol: " + protocol)
        self.sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        while b"\r\n\r\n" not in self.buf:
            self._fill()
        head, self.buf = self.buf.split(b"\r\n\r\n", 1)
        status, *headers = head.decode("latin-1").split("\r\n")
        if " 101 " not in status + " ":
            raise IOError("handshake refused: " + status)
        fields = {}
        for h in headers:
            name, _, value = h.partition(":")
            fields[name.strip().lower()] = value.strip()
        want = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if fields.get("sec-websocket-accept") != want:
            raise IOError("bad Sec-WebSocket-Accept")
        if protocol and fields.get("sec-websocket-protocol") != protocol:
            raise IOError("subprotocol not echoed: %r" % fields.get("sec-websocket-protocol"))

    def _fill(self):
        chunk = self.sock.recv(65536)
        if not chunk:
            raise EOFError("connection closed without a close frame")
        self.buf += chunk

    def _take(self, n):
        while len(self.buf) < n:
            self._fill()
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload):
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 65536:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        self.sock.sendall(head + mask + masked)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text.encode())

    def recv_frame(self):
        """Return (fin, opcode, payload) of the next frame."""
        b0, b1 = self._take(2)
        n = b1 & 0x7F
        if n == 126:
            (n,) = struct.unpack("!H", self._take(2))
        elif n == 127:
            (n,) = struct.unpack("!Q", self._take(8))
        mask = self._take(4) if b1 & 0x80 else None
        payload = self._take(n)
        if mask:
            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
        return bool(b0 & 0x80), b0 & 0x0F, payload

    def recv_text(self):
        """Next text message; answers pings; raises Closed on a close frame."""
        parts = []
        while True:
            fin, op, payload = self.recv_frame()
            if op == OP_PING:
                self.send_frame(OP_PONG, payload)
            elif op == OP_CLOSE:
                code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else None
                raise Closed(code, payload[2:].decode("utf-8", "replace"))
            elif op in (OP_TEXT, 0x0):
                parts.append(payload)
                if fin:
                    return b"".join(parts).decode()
            elif op == OP_PONG:
                continue
            else:
                raise IOError("unexpected opcode %d" % op)

    def close(self):
        self.sock.close()


class Rpc:
    """JSON-RPC over one WebSocket: requests with ids, notifications queued."""

    def __init__(self, ws, callsign="Messenger.1"):
        self.ws = ws
        self.callsign = callsign
        self.next_id = 1
        self.events = []

    def call(self, method, params):
        rid = self.next_id
        self.next_id += 1
        msg = {"jsonrpc": "2.0", "id": rid, "method": "%s.%s" % (self.callsign, method),
               "params": params}
        self.ws.send_text(json.dumps(msg))
        while True:
            reply = json.loads(self.ws.recv_text())
            if reply.get("id") == rid:
                if "error" in reply:
                    raise IOError("%s failed: %s" % (method, reply["error"]))
                return reply.get("result")
            self.events.append(reply)

    def wait_event(self, method):
        while True:
            for i, ev in enumerate(self.events):
                if ev.get("method") == method:
                    return self.events.pop(i)
            self.events.append(json.loads(self.ws.recv_text()))


def start_server(cmd, timeout):
    """Start CMD, return (process, port) once it printed `listening on`."""
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True)
    found = {}

    def reader():
        for line in proc.stdout:
            sys.stdout.write("server: " + line)
            if "listening on" in line and "port" not in found:
                found["port"] = int(line.strip().rsplit(":", 1)[1])

    threading.Thread(target=reader, daemon=True).start()
    deadline = time.monotonic() + timeout
    while "port" not in found:
        if proc.poll() is not None:
            raise SystemExit("server exited with %s before listening" % proc.returncode)
        if time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("server did not print 'listening on' within %ss" % timeout)
        time.sleep(0.05)
    return proc, found["port"]


def smoke(cmd, timeout=60.0):
    proc, port = start_server(cmd, timeout)
    try:
        ws = WebSocket("127.0.0.1", port, timeout=timeout)
        rpc = Rpc(ws)
        roomid = rpc.call("join", {"user": "smoke", "room": "box"})
        roomid = roomid["roomid"] if isinstance(roomid, dict) else roomid
        print("joined, roomid", roomid)
        rpc.call("register", {"event": "message", "id": roomid + ".client.events"})
        rpc.call("send", {"roomid": roomid, "message": "hello from qemu"})
        ev = rpc.wait_event(roomid + ".client.events.message")
        if ev["params"] != {"user": "smoke", "message": "hello from qemu"}:
            raise SystemExit("unexpected message event: %r" % ev)
        print("message came back:", json.dumps(ev["params"]))
        proc.send_signal(signal.SIGTERM)
        try:
            while True:
                ws.recv_text()
        except Closed as closed:
            code = closed.code
        print("close code", code)
        rc = proc.wait(timeout=timeout)
        print("server exit code", rc)
        if code != 1001:
            raise SystemExit("expected close code 1001, got %s" % code)
        if rc != 0:
            raise SystemExit("expected exit code 0, got %s" % rc)
        print("smoke: ok")
    finally:
        if proc.poll() is None:
            proc.kill()


def main(argv):
    if len(argv) >= 3 and argv[1] == "smoke" and argv[2] == "--":
        smoke(argv[3:])
    else:
        print("usage: wsclient.py smoke -- SERVER_COMMAND...", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
