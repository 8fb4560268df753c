#!/usr/bin/env python3
"""HTTP proxy for tests that answers chosen requests with 503.

    faultproxy.py --upstream http://127.0.0.1:PORT --port-file F --log L \
        --fail 'GET ^/v2/$ 1' --fail 'PUT /manifests/ -1'

Listens on 127.0.0.1 (port written to --port-file).  A request whose
method and path match a --fail rule (METHOD REGEX COUNT) gets 503 with an
OCI-style error body while the rule's COUNT lasts (-1: always); any other
request is forwarded to --upstream with its headers (Host included, so a
registry's Location headers point back here) and body.  Each request is
logged as "METHOD PATH STATUS" before the answer is sent.
"""
import argparse
import http.client
import http.server
import os
import re
import threading
import urllib.parse

LOCK = threading.Lock()
HOP = {"connection", "keep-alive", "transfer-encoding", "proxy-connection", "upgrade"}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):
        pass

    def log_line(self, status):
        with LOCK, open(self.server.log_path, "a") as f:
            f.write("%s %s %s\n" % (self.command, self.path, status))

    def injected(self):
        with LOCK:
            for rule in self.server.rules:
                if rule["method"] == self.command and rule["re"].search(self.path) and rule["left"] != 0:
                    if rule["left"] > 0:
                        rule["left"] -= 1
                    return True
        return False

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        if self.injected():
            data = b'{"errors":[{"code":"UNAVAILABLE","message":"injected by faultproxy"}]}'
            self.log_line(503)
            self.send_response(503)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            return
        up = self.server.upstream
        conn = http.client.HTTPConnection(up.hostname, up.port, timeout=60)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in HOP}
        conn.request(self.command, self.path, body=body if length else None, headers=headers)
        resp = conn.getresponse()
        data = resp.read()
        self.log_line(resp.status)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in HOP and k.lower() != "content-length":
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)
        conn.close()

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = handle_any


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--fail", action="append", default=[])
    a = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    srv.upstream = urllib.parse.urlsplit(a.upstream)
    srv.log_path = a.log
    srv.rules = []
    for spec in a.fail:
        method, regex, count = spec.split(" ")
        srv.rules.append({"method": method, "re": re.compile(regex), "left": int(count)})
    open(a.log, "a").close()
    with open(a.port_file + ".tmp", "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(a.port_file + ".tmp", a.port_file)
    srv.serve_forever()


if __name__ == "__main__":
    main()
