#!/usr/bin/env python3
"""Many idle TCP streams for bench/tunnel.sh, bounded in count and time.

  streams.py serve HOST PORT            echo server holding any number of connections (until killed)
  streams.py probe HOST PORT [N] [-t S] N connections one after the other (default 1), one echoed
                                        byte on each; exit 0 if every byte came back
  streams.py hold HOST PORT N [-t S]    open N connections, echo one byte on each (so every stream is
                                        open end to end), print "ready N", then hold them until
                                        killed or S seconds pass
"""
import argparse
import resource
import selectors
import socket
import sys
import time


def raise_fd_limit(wanted):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(wanted, hard), hard))


def serve(host, port):
    raise_fd_limit(1 << 16)
    listener = socket.create_server((host, port), backlog=4096)
    listener.setblocking(False)
    sel = selectors.DefaultSelector()
    sel.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in sel.select():
            sock = key.fileobj
            if sock is listener:
                try:
                    conn, _ = listener.accept()
                except BlockingIOError:
                    continue
                conn.setblocking(False)
                sel.register(conn, selectors.EVENT_READ)
                continue
            try:
                data = sock.recv(4096)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if data:
                try:
                    sock.send(data)  # tiny payloads: a short write is not a concern here
                except OSError:
                    data = b""
            if not data:
                sel.unregister(sock)
                sock.close()


def probe(host, port, count, timeout):
    for _ in range(count):
        with socket.create_connection((host, port), timeout=timeout) as sock:
            sock.sendall(b"p")
            if sock.recv(1) != b"p":
                return 1
    return 0


def hold(host, port, count, timeout):
    raise_fd_limit(count + 64)
    deadline = time.monotonic() + timeout
    socks = []
    for _ in range(count):
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"opened only {len(socks)} of {count} connections in {timeout} s", file=sys.stderr)
            return 1
        sock = socket.create_connection((host, port), timeout=left)
        sock.sendall(b"h")
        socks.append(sock)
    sel = selectors.DefaultSelector()
    for sock in socks:
        sock.setblocking(False)
        sel.register(sock, selectors.EVENT_READ)
    pending = count
    while pending:
        left = deadline - time.monotonic()
        if left <= 0:
            print(f"{pending} of {count} streams never echoed within {timeout} s", file=sys.stderr)
            return 1
        for key, _ in sel.select(left):
            if key.fileobj.recv(1) != b"h":
                print("a stream closed before echoing", file=sys.stderr)
                return 1
            sel.unregister(key.fileobj)
            pending -= 1
    print(f"ready {count}", flush=True)
    time.sleep(max(0.0, deadline - time.monotonic()))
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("mode", choices=["serve", "probe", "hold"])
    parser.add_argument("host")
    parser.add_argument("port", type=int)
    parser.add_argument("count", type=int, nargs="?", default=None)
    parser.add_argument("-t", "--timeout", type=float, default=60.0)
    args = parser.parse_args()
    if args.mode == "serve":
        serve(args.host, args.port)
        return 0
    if args.count is None:
        args.count = 1 if args.mode == "probe" else 1000
    try:
        if args.mode == "probe":
            return probe(args.host, args.port, args.count, args.timeout)
        return hold(args.host, args.port, args.count, args.timeout)
    except OSError as error:
        print(f"{args.mode} {args.host}:{args.port}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
