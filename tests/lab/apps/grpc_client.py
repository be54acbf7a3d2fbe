#!/usr/bin/python3
"""The lab's gRPC test client, for the sluice.test.Echo service of grpc_app.py (see there).

Messages are raw UTF-8 bytes, no generated code. One call prints one JSON object:

  {"code": "OK", "details": "", "responses": [...], "initial_metadata": {...},
   "trailing_metadata": {...}}

responses are decoded as UTF-8 (errors replaced); for Big there are "bytes" (the length)
and "sha256" instead. Metadata values are strings (repeated keys joined with ", ").

  Who                  Echo TEXT...   (joined by spaces)    Fail CODE_NAME [DETAILS...]
  Big N                Count N        (server stream)        Sum NUMBER...  (client stream)
  Chat MESSAGE...      (bidi, in lock-step: each message is sent after the answer to the
                       one before, so a proxy that buffers a stream times out)

Any other method name is called as unary with the args joined (to see UNIMPLEMENTED).
With --count N a unary method is called N times on one channel and only a summary is
printed: {"calls": N, "codes": {"OK": n, ...}, "answers": {"v1 pod-a": n, ...}}.

Exit status 0 whenever results were printed (whatever the status codes), 2 on usage errors.

Usage: grpc_client.py TARGET METHOD [ARG...] [--count N] [--timeout S] [--metadata k=v ...]
  TARGET: 198.18.0.10:9090, [fd00:5::10]:9090 or name:port
"""
import argparse
import hashlib
import json
import threading

import grpc

SERVICE = "/sluice.test.Echo/"
MAX_MESSAGE = 64 << 20
STREAMING = {"Count": "unary_stream", "Sum": "stream_unary", "Chat": "stream_stream"}


def metadata_dict(metadata):
    out = {}
    for key, value in metadata or ():
        if isinstance(value, bytes):  # "-bin" keys
            value = value.decode(errors="replace")
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def describe(method, response):
    if method == "Big":
        return f"{len(response)} bytes {hashlib.sha256(response).hexdigest()}"
    return response.decode(errors="replace")


def unary(channel, method, request, timeout, metadata):
    try:
        response, call = channel.unary_unary(SERVICE + method).with_call(
            request, timeout=timeout, metadata=metadata)
        return call, [response]
    except grpc.RpcError as error:  # the error is the finished call
        return error, []


def chat(channel, messages, timeout, metadata):
    answered = threading.Semaphore(0)
    done = threading.Event()

    def requests():
        for i, message in enumerate(messages):
            # Wait for the answer to the previous message (or the call to end).
            while i and not answered.acquire(timeout=0.1):
                if done.is_set():
                    return
            yield message

    call = channel.stream_stream(SERVICE + "Chat")(requests(), timeout=timeout, metadata=metadata)
    responses = []
    try:
        for response in call:
            responses.append(response)
            answered.release()
    except grpc.RpcError:
        pass  # the status is on the call
    finally:
        done.set()
    return call, responses


def one_call(channel, method, args, timeout, metadata):
    encoded = [a.encode() for a in args]
    if method == "Count":
        call = channel.unary_stream(SERVICE + method)(encoded[0], timeout=timeout, metadata=metadata)
        responses = []
        try:
            responses.extend(call)
        except grpc.RpcError:
            pass  # keep what arrived before the error
    elif method == "Sum":
        try:
            response, call = channel.stream_unary(SERVICE + method).with_call(
                iter(encoded), timeout=timeout, metadata=metadata)
            responses = [response]
        except grpc.RpcError as error:
            call, responses = error, []
    elif method == "Chat":
        call, responses = chat(channel, encoded, timeout, metadata)
    else:
        call, responses = unary(channel, method, " ".join(args).encode(), timeout, metadata)
    return call, responses


def main():
    parser = argparse.ArgumentParser(usage=__doc__.split("Usage: ")[1].split("\n")[0])
    parser.add_argument("target")
    parser.add_argument("method")
    parser.add_argument("args", nargs="*")
    parser.add_argument("--count", type=int)
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("--metadata", action="append", default=[], metavar="K=V")
    args = parser.parse_intermixed_args()  # options may come after the method's args

    if args.method in ("Count", "Big") and len(args.args) != 1:
        parser.error(f"{args.method} takes one number")
    if args.method in ("Sum", "Chat") and not args.args:
        parser.error(f"{args.method} takes at least one message")
    if args.count is not None and (args.count < 1 or args.method in STREAMING):
        parser.error("--count takes N >= 1 and a unary method")
    if any("=" not in m for m in args.metadata):
        parser.error("--metadata takes key=value")
    # gRPC rejects upper-case metadata keys (HTTP/2 header names are lower case anyway)
    # and wants bytes for "-bin" keys.
    metadata = [(k.lower(), v.encode() if k.lower().endswith("-bin") else v)
                for k, v in (m.split("=", 1) for m in args.metadata)]

    channel = grpc.insecure_channel(args.target, options=[
        ("grpc.enable_http_proxy", 0),  # else http_proxy/grpc_proxy in the env would be used
        ("grpc.max_send_message_length", MAX_MESSAGE),
        ("grpc.max_receive_message_length", MAX_MESSAGE),
    ])
    with channel:
        if args.count is None:
            call, responses = one_call(channel, args.method, args.args, args.timeout, metadata)
            out = {"code": call.code().name, "details": call.details() or ""}
            if args.method == "Big":
                out["bytes"] = sum(len(r) for r in responses)
                out["sha256"] = hashlib.sha256(b"".join(responses)).hexdigest() if responses else None
            else:
                out["responses"] = [describe(args.method, r) for r in responses]
            out["initial_metadata"] = metadata_dict(call.initial_metadata())
            out["trailing_metadata"] = metadata_dict(call.trailing_metadata())
            print(json.dumps(out))
            return
        codes, answers = {}, {}
        for _ in range(args.count):
            call, responses = one_call(channel, args.method, args.args, args.timeout, metadata)
            codes[call.code().name] = codes.get(call.code().name, 0) + 1
            for r in responses:
                answers[describe(args.method, r)] = answers.get(describe(args.method, r), 0) + 1
        print(json.dumps({"calls": args.count, "codes": codes, "answers": answers}))


if __name__ == "__main__":
    main()
