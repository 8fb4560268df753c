#!/usr/bin/env python3
"""A threaded HTTP/1.1 file server for azl-compose tests.

Usage:
    python3 tests/lib/httpd.py --root DIR --port-file F [--log F] [--port N]

Listens on 127.0.0.1 only (an ephemeral port unless --port), writes the port
number to F once it accepts connections, and serves the files under DIR with
Content-Length, keep-alive, HEAD and single Range requests (206, 416).
SIGTERM or SIGINT stops it.

Fault injection through path prefixes, so a repository baseurl can carry it:

    /@fault/<mode>[*N]/<rest>   the first N requests for <rest> under this
                                mode misbehave (default: every request);
                                later ones are served normally
    /@slow/<bytes_per_s>/<rest> send the body at about that rate

Modes:
    500       answer 500 Internal Server Error
    404       answer 404 Not Found
    reset     close the connection (TCP RST) without a response
    truncate  send headers with the full Content-Length, half the body, close
    stall     send headers and a little body, then sleep 120 s
    norange   ignore Range and send the whole file with 200

Prefixes nest: /@fault/500*1/@slow/100000/repo/x.rpm.  The counter for N is
kept per (mode, N, <rest>) for the life of the server.

With --log, each request appends one line "METHOD PATH STATUS" (STATUS is
"reset" or "truncate"/"stall" for the faults that send no complete answer),
so a test can count attempts: grep -c ' /@fault/500\\*2/x.rpm ' LOG.
"""
import argparse
import http.server
import os
import signal
import socket
import struct
import sys
import threading
import time
import urllib.parse

COUNTS = {}
COUNTS_LOCK = threading.Lock()
LOG_LOCK = threading.Lock()


def fault_active(key, limit):
    """True while this request is among the first `limit` for key."""
    with COUNTS_LOCK:
        n = COUNTS.get(key, 0) + 1
        COUNTS[key] = n
    return limit is None or n <= limit


def parse_prefixes(path):
    """Split the @fault/@slow prefixes off a URL path.

    Returns (rest, fault_mode or None, bytes_per_s or None)."""
    fault = None
    rate = None
    parts = path.lstrip("/").split("/")
    while len(parts) >= 3 and parts[0] in ("@fault", "@slow"):
        kind, arg, parts = parts[0], parts[1], parts[2:]
        if kind == "@slow":
            rate = max(1, int(arg))
            continue
        mode, _, count = arg.partition("*")
        limit = int(count) if count else None
        rest = "/".join(parts)
        if fault is None and fault_active((mode, limit, rest), limit):
            fault = mode
    return "/" + "/".join(parts), fault, rate


def parse_range(header, size):
    """(start, end) inclusive for 'bytes=a-b' / 'bytes=a-', None if absent
    or not understood, 'bad' when unsatisfiable."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    first, _, last = header[6:].strip().partition("-")
    try:
        if first == "":
            n = int(last)
            return (max(0, size - n), size - 1) if n > 0 else "bad"
        start = int(first)
        end = int(last) if last else size - 1
    except ValueError:
        return None
    if start >= size or end < start:
        return "bad"
    return start, min(end, size - 1)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "azl-test-httpd"

    def log_message(self, fmt, *args):  # quiet: the --log file is enough
        pass

    def log_line(self, status):
        log = self.server.log_path
        if not log:
            return
        with LOG_LOCK, open(log, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, status))

    def do_HEAD(self):
        self.serve(head=True)

    def do_GET(self):
        self.serve(head=False)

    def reset(self):
        self.log_line("reset")
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                   struct.pack("ii", 1, 0))
        self.close_connection = True
        self.connection.close()

    def answer_error(self, code):
        body = ("%d\n" % code).encode()
        self.log_line(code)
        self.send_response(code)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def resolve(self, rest):
        rel = urllib.parse.unquote(rest).lstrip("/")
        full = os.path.realpath(os.path.join(self.server.root, rel))
        if full != self.server.root and not full.startswith(self.server.root + os.sep):
            return None
        return full if os.path.isfile(full) else None

    def serve(self, head):
        rest, fault, rate = parse_prefixes(urllib.parse.urlsplit(self.path).path)
        if fault == "reset":
            return self.reset()
        if fault in ("500", "404"):
            return self.answer_error(int(fault))
        path = self.resolve(rest)
        if path is None:
            return self.answer_error(404)
        size = os.path.getsize(path)
        rng = None if fault == "norange" else parse_range(self.headers.get("Range"), size)
        if rng == "bad":
            self.log_line(416)
            self.send_response(416)
            self.send_header("Content-Range", "bytes */%d" % size)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        start, end = rng if rng else (0, size - 1)
        length = end - start + 1 if size else 0
        self.send_response(206 if rng else 200)
        if rng:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        self.send_header("Accept-Ranges", "bytes")
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(length))
        self.end_headers()
        if head:
            self.log_line(206 if rng else 200)
            return
        with open(path, "rb") as f:
            self.send_body(f, start, length, fault, rate, 206 if rng else 200)

    def send_body(self, f, start, length, fault, rate, status):
        self.wfile.flush()
        if fault == "truncate":
            self.connection.sendfile(f, start, length // 2)
            self.log_line("truncate")
            self.close_connection = True
            return
        if fault == "stall":
            self.connection.sendfile(f, start, min(1024, length // 2))
            self.log_line("stall")
            self.close_connection = True
            time.sleep(120)
            return
        # Logged before the body: a client may finish reading (and a test
        # read the log) before this thread returns from sending.
        self.log_line(status)
        if rate:
            self.send_slow(f, start, length, rate)
        elif length:
            self.connection.sendfile(f, start, length)

    def send_slow(self, f, start, length, rate):
        chunk = max(1, rate // 10)
        f.seek(start)
        while length > 0:
            data = f.read(min(chunk, length))
            if not data:
                break
            self.connection.sendall(data)
            length -= len(data)
            time.sleep(len(data) / rate)


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # stalled handlers must not delay exit
    allow_reuse_address = True
    request_queue_size = 128


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()

    srv = Server(("127.0.0.1", args.port), Handler)
    srv.root = os.path.realpath(args.root)
    srv.log_path = os.path.abspath(args.log) if args.log else None

    def stop(signum, frame):
        threading.Thread(target=srv.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)  # readers never see a half-written port
    srv.serve_forever(poll_interval=0.2)
    srv.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
