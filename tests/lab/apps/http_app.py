#!/usr/bin/env python3
"""The lab's test application: an HTTP/1.1 server whose answers say who answered and that
can be told to misbehave, so waypoint tests can check routing, retries and timeouts.

  GET  /                     200 "<version> <pod>"  (VERSION, POD_NAME from the environment)
  GET  /fail/<key>/<n>       503 for the first n requests with that key (per pod), then 200
  GET  /slow/<ms>            200 after sleeping ms milliseconds
  GET  /slowonce/<key>/<ms>  the first request with that key sleeps ms milliseconds, later ones not
  GET  /status/<code>        that status
  GET  /bytes/<n>            n bytes (streamed in 64 KiB pieces)
  POST /sha256               200 with the SHA-256 and length of the request body
  GET  /headers              200 with the request headers, one "name: value" a line

With FAIL_ALL=1 in the environment every request is answered 503 (an unhealthy endpoint).

Usage: http_app.py [--port 8080] [--bind ::]
"""
import argparse
import hashlib
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

VERSION = os.environ.get("VERSION", "v0")
POD = os.environ.get("POD_NAME", "unknown")
FAIL_ALL = os.environ.get("FAIL_ALL") == "1"
failures = {}
lock = threading.Lock()


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    # One write per response, and no Nagle: a head and a body written separately would
    # otherwise wait for a delayed ACK (40 ms) on every keep-alive request.
    disable_nagle_algorithm = True
    wbufsize = -1

    def log_message(self, *args):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        self.send_header("content-length", str(len(body)))
        self.send_header("x-served-by", f"{VERSION} {POD}")
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_GET(self):
        parts = [p for p in self.path.split("?")[0].split("/") if p]
        if FAIL_ALL:
            return self.reply(503, f"{POD} is unhealthy\n".encode())
        if not parts:
            return self.reply(200, f"{VERSION} {POD}\n".encode())
        if parts[0] == "fail" and len(parts) == 3:
            with lock:
                seen = failures.get(parts[1], 0)
                failures[parts[1]] = seen + 1
            if seen < int(parts[2]):
                return self.reply(503, f"failure {seen + 1} of {parts[2]} from {POD}\n".encode())
            return self.reply(200, f"{VERSION} {POD} after {seen} failures\n".encode())
        if parts[0] == "slow" and len(parts) == 2:
            time.sleep(int(parts[1]) / 1000)
            return self.reply(200, f"{VERSION} {POD} slow {parts[1]}\n".encode())
        if parts[0] == "slowonce" and len(parts) == 3:
            with lock:
                first = parts[1] not in failures
                failures[parts[1]] = 1
            if first:
                time.sleep(int(parts[2]) / 1000)
            return self.reply(200, f"{VERSION} {POD} {'slow' if first else 'fast'}\n".encode())
        if parts[0] == "status" and len(parts) == 2:
            return self.reply(int(parts[1]), f"status {parts[1]} from {POD}\n".encode())
        if parts[0] == "bytes" and len(parts) == 2:
            n = int(parts[1])
            self.send_response(200)
            self.send_header("content-length", str(n))
            self.end_headers()
            piece = b"x" * 65536
            while n > 0:
                self.wfile.write(piece[: min(n, len(piece))])
                n -= min(n, len(piece))
            return None
        if parts[0] == "headers":
            text = "".join(f"{k.lower()}: {v}\n" for k, v in self.headers.items())
            return self.reply(200, text.encode())
        return self.reply(404, b"not found\n")

    do_HEAD = do_GET

    def do_POST(self):
        digest = hashlib.sha256()
        total = 0
        if self.headers.get("transfer-encoding", "").lower() == "chunked":
            while True:
                size = int(self.rfile.readline().strip().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    break
                data = self.rfile.read(size)
                digest.update(data)
                total += len(data)
                self.rfile.readline()
        else:
            left = int(self.headers.get("content-length", "0"))
            while left > 0:
                data = self.rfile.read(min(left, 1 << 20))
                if not data:
                    break
                digest.update(data)
                total += len(data)
                left -= len(data)
        self.reply(200, f"{digest.hexdigest()} {total}\n".encode())


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--bind", default="::")
    args = parser.parse_args()
    ThreadingHTTPServer.address_family = __import__("socket").AF_INET6 if ":" in args.bind else __import__("socket").AF_INET
    # A real server's backlog: socketserver's default of 5 drops SYNs when a proxy opens dozens
    # of connections at once (h2load's 64 streams), and the retransmit costs a second.
    ThreadingHTTPServer.request_queue_size = 1024
    server = ThreadingHTTPServer((args.bind, args.port), Handler)
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
