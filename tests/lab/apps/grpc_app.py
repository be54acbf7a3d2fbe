#!/usr/bin/python3
"""The lab's gRPC test application: a plaintext (h2c) gRPC server whose answers say who
answered, so mesh tests can check routing, streaming, status codes and large messages.

No generated code: service sluice.test.Echo is served by generic handlers and every message
is raw bytes, here UTF-8 text (decimal numbers where a number is expected).

  Who    unary          "<version> <pod>"  (VERSION, POD_NAME from the environment)
  Echo   unary          the request unchanged; request metadata x-echo comes back as
                        trailing metadata x-echo
  Count  server stream  request N: N messages "0" .. "N-1"
  Sum    client stream  requests are numbers: one answer, their sum
  Chat   bidi stream    each message answered upper-cased as soon as it arrives
  Fail   unary          request "<CODE_NAME> <details>" (e.g. "NOT_FOUND no such thing"):
                        fails with that status code and details
  Big    unary          request N: N bytes, byte i being i % 251 (not a power of two, so a
                        misplaced or repeated frame changes the SHA-256)

Messages may be up to 64 MiB either way. A bad number answers INVALID_ARGUMENT.
SIGTERM or SIGINT stops the server (1 s grace for calls in flight) and exits 0.

Usage: grpc_app.py [--port 9090] [--bind ::]    (/usr/bin/python3: Debian's python3-grpcio)
"""
import argparse
import os
import signal
import threading
from concurrent import futures

import grpc

VERSION = os.environ.get("VERSION", "v0")
POD = os.environ.get("POD_NAME", "unknown")
MAX_MESSAGE = 64 << 20


def number(data, context):
    try:
        return int(data)  # int() takes ASCII digits as bytes
    except ValueError:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT,
                      f"not a number: {data[:100].decode(errors='replace')!r}")


def who(request, context):
    return f"{VERSION} {POD}".encode()


def echo(request, context):
    echoed = tuple((k, v) for k, v in context.invocation_metadata() if k == "x-echo")
    if echoed:
        context.set_trailing_metadata(echoed)
    return request


def count(request, context):
    for i in range(number(request, context)):
        yield str(i).encode()


def total(requests, context):
    return str(sum(number(r, context) for r in requests)).encode()


def chat(requests, context):
    # A generator over the request iterator: each answer goes out before the next request
    # is read, so a client can send in lock-step (a proxy that buffers would stall it).
    for message in requests:
        yield message.upper()


def fail(request, context):
    name, _, details = request.decode(errors="replace").partition(" ")
    code = grpc.StatusCode.__members__.get(name.upper())
    if code is None:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"no such status code: {name}")
    if code is grpc.StatusCode.OK:  # abort() cannot carry OK; answer normally instead
        return details.encode()
    context.abort(code, details)


def big(request, context):
    n = number(request, context)
    if not 0 <= n <= MAX_MESSAGE:
        context.abort(grpc.StatusCode.INVALID_ARGUMENT, f"0 <= N <= {MAX_MESSAGE}")
    return (bytes(range(251)) * (n // 251 + 1))[:n]


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=9090)
    parser.add_argument("--bind", default="::")
    args = parser.parse_args()

    # Without serializers the handlers see and return bytes.
    handler = grpc.method_handlers_generic_handler("sluice.test.Echo", {
        "Who": grpc.unary_unary_rpc_method_handler(who),
        "Echo": grpc.unary_unary_rpc_method_handler(echo),
        "Count": grpc.unary_stream_rpc_method_handler(count),
        "Sum": grpc.stream_unary_rpc_method_handler(total),
        "Chat": grpc.stream_stream_rpc_method_handler(chat),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Big": grpc.unary_unary_rpc_method_handler(big),
    })
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=16), handlers=[handler], options=[
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
        # gRPC sets SO_REUSEPORT by default, so a second server on a taken port would
        # silently share it; fail instead.
        ("grpc.so_reuseport", 0),
    ])
    host = f"[{args.bind}]" if ":" in args.bind else args.bind  # "[::]" is dual-stack
    server.add_insecure_port(f"{host}:{args.port}")  # raises RuntimeError if it cannot bind
    server.start()

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    stop.wait()
    server.stop(grace=1).wait()


if __name__ == "__main__":
    main()
