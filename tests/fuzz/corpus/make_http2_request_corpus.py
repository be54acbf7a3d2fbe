#!/usr/bin/env python3
# Writes the seeds of fuzz_http2_request: run `python3 make_http2_request_corpus.py` in this folder.
# Each seed is one byte choosing the read piece size (0: all at once) and then the client's bytes:
# preface and frames, heads as HPACK literals without indexing (RFC 7541 section 6.2.2).
import os
import struct

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
DATA, HEADERS, RST_STREAM, SETTINGS, GOAWAY, WINDOW_UPDATE = 0, 1, 3, 4, 7, 8
END_STREAM, END_HEADERS = 0x1, 0x4


def frame(kind, flags, stream, payload=b""):
    header = struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream)
    return header + payload


def literal(name, value):
    assert len(name) < 127 and len(value) < 127  # one-byte length prefixes
    return b"\x00" + bytes([len(name)]) + name.encode() + bytes([len(value)]) + value.encode()


def head(stream, fields, end_stream=False):
    block = b"".join(literal(n, v) for n, v in fields)
    return frame(HEADERS, END_HEADERS | (END_STREAM if end_stream else 0), stream, block)


def request(method, path, extra=(), authority="reviews.default.svc:9080"):
    return [(":method", method), (":scheme", "http"), (":authority", authority), (":path", path),
            *extra]


START = PREFACE + frame(SETTINGS, 0, 0)
post = request("POST", "/upload?x=1", [("content-length", "11"), ("content-type", "text/plain")])

SEEDS = {
    "get": (0, START + head(1, request("GET", "/index.html?x=1"), end_stream=True)),
    "get_one_byte_reads": (1, START + head(1, request("GET", "/"), end_stream=True)),
    "host_instead_of_authority": (0, START + head(1, [(":method", "GET"), (":scheme", "http"),
                                                      (":path", "/"), ("host", "ratings:9080")],
                                                  end_stream=True)),
    "post_data_trailers": (7, START + head(1, post) + frame(DATA, 0, 1, b"hello")
                           + frame(DATA, 0, 1, b" world") + head(1, [("x-checksum", "abc")], True)),
    "content_length_short": (0, START + head(1, post) + frame(DATA, END_STREAM, 1, b"hello")),
    "connection_header": (0, START + head(1, request("GET", "/", [("connection", "keep-alive")]),
                                          end_stream=True)),
    "truncated_frame": (0, START + head(1, post)[:20]),
    "rst_mid_body": (0, START + head(1, post) + frame(DATA, 0, 1, b"hel")
                     + frame(RST_STREAM, 0, 1, struct.pack(">I", 8))),
    "eof_mid_body": (0, START + head(1, post) + frame(DATA, 0, 1, b"hel")),
    "bad_preface": (0, b"PRI * HTTP/1.1\r\n\r\nSM\r\n\r\n" + frame(SETTINGS, 0, 0)),
    "grpc": (3, START + head(1, request("POST", "/sluice.test.Echo/Echo",
                                        [("content-type", "application/grpc"), ("te", "trailers")]))
             + frame(DATA, END_STREAM, 1, b"\x00\x00\x00\x00\x05hello")),
    "two_streams_goaway": (0, START + head(1, request("GET", "/a"), end_stream=True)
                           + head(3, post) + frame(DATA, END_STREAM, 3, b"hello world")
                           + frame(GOAWAY, 0, 0, struct.pack(">II", 3, 0))),
    # SETTINGS_INITIAL_WINDOW_SIZE 0: the answer's DATA waits for a WINDOW_UPDATE that comes last.
    "zero_window": (0, PREFACE + frame(SETTINGS, 0, 0, struct.pack(">HI", 4, 0))
                    + head(1, request("GET", "/"), end_stream=True)
                    + frame(WINDOW_UPDATE, 0, 1, struct.pack(">I", 100))),
}

for name, (piece, data) in SEEDS.items():
    with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fuzz_http2_request", name),
              "wb") as out:
        out.write(bytes([piece]) + data)
