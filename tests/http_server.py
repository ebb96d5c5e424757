#!/usr/bin/python3
"""Fault-injecting HTTP server for the fetch tests (standard library only).

Serves on 127.0.0.1 on a free port and prints "PORT <n>" on its first stdout line. URLs are
/<mode>/<file>; the files are generated, so the test registry (tests/fixtures/fetch-registry.json)
can hold their digests:
  blob.bin     262144 bytes: sha256(i as 4 big-endian bytes) for i = 0..8191, concatenated
  archive.tgz  a tar.gz holding top/a.bin (blob[:1000]), top/sub/b.txt, top/link -> a.bin
Every answer with a body names its version (validators): ETag '"<first 16 hex digits of the
body's sha256>"' and a fixed Last-Modified, unless the mode says otherwise; a Range request is
answered 206 unless an If-Range is sent that names another version, then 200 with everything.
Modes (a "-once" mode misbehaves on its first request for that path, then serves "ok"; a "-twice"
mode on its first two):
  ok              200, or 206 for "Range: bytes=N-"
  nv-ok           like ok, without ETag or Last-Modified
  lm-ok           like ok, with Last-Modified only
  trunc-twice     like trunc-once, for the first two requests
  nv-trunc-once   like trunc-once, without validators (then nv-ok)
  nv-trunc        always like nv-trunc-once's first answer
  lm-trunc-once   like trunc-once, with Last-Modified only (then lm-ok)
  changed-once    the first answer is another version of the file (other bytes, other ETag), cut in
                  half; then the file itself, as ok (a mirror that changed between a kill and a resume)
  ignore-if-range like ok, but honours a Range request whatever its If-Range says (a broken server),
                  after a first answer of another version cut in half
  trunc-once      announces the full length, sends half, closes
  trunc-norange   like trunc-once, then ignores Range (200 with everything)
  stall-once      sends the first 512 bytes, then stalls (keeps the connection open, sends nothing);
                  few bytes, because libcurl averages speed over ~5 s and a big burst hides the stall
  stall           always stalls after 512 bytes
  404, 500        that status, always
  503-once, 429-once  that status with "Retry-After: 1", then ok
  503             always 503 with "Retry-After: 1"
  503-date-once   503 with Retry-After as an HTTP date 2 s ahead, then ok
  408-once        408, then ok
  html            200 with an HTML page, Content-Type text/html
  html-octet      200 with an HTML page, Content-Type application/octet-stream
  wrong           200 with bytes of the right length but wrong content
  long            200 with the content and 100 extra bytes
  redirect        302 to /ok/<file>
  redirect-file   302 to file:///etc/passwd (must be refused by the client)
  redirect-loop   302 to itself
GET /hits returns a JSON object: path -> list of the Range headers of its requests so far ("" when
none); GET /if-range the same for the If-Range headers. The server exits when its parent dies
(--parent PID) or after --lifetime seconds, so a crashed test never leaves it running.
"""
import argparse
import email.utils
import hashlib
import io
import json
import os
import re
import tarfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def make_blob():
    return b"".join(hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(8192))


def make_archive(blob):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz", format=tarfile.USTAR_FORMAT) as tf:
        def add(name, data=None, kind=tarfile.REGTYPE, link=""):
            ti = tarfile.TarInfo(name)
            ti.mtime = 1600000000
            ti.type = kind
            ti.linkname = link
            ti.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
            if data is not None:
                ti.size = len(data)
            tf.addfile(ti, io.BytesIO(data) if data is not None else None)
        add("top", kind=tarfile.DIRTYPE)
        add("top/a.bin", blob[:1000])
        add("top/sub", kind=tarfile.DIRTYPE)
        add("top/sub/b.txt", b"hello from the archive\n")
        add("top/link", kind=tarfile.SYMTYPE, link="a.bin")
    return buf.getvalue()


BLOB = make_blob()
FILES = {"blob.bin": BLOB, "archive.tgz": make_archive(BLOB)}
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in.</body></html>\n"
HITS = {}
IF_RANGE = {}
LOCK = threading.Lock()
LAST_MODIFIED = "Wed, 21 Oct 2015 07:28:00 GMT"


def etag(data):
    return '"%s"' % hashlib.sha256(data).hexdigest()[:16]


def other_version(data):
    return bytes(b ^ 0xA5 for b in data)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # quiet: the test prints what matters
        pass

    validators = "both"  # per request: "both", "lm" (Last-Modified only) or "none"

    def version_headers(self, data):
        h = []
        if self.validators == "both":
            h.append(("ETag", etag(data)))
        if self.validators in ("both", "lm"):
            h.append(("Last-Modified", LAST_MODIFIED))
        return h

    def send(self, code, body=b"", ctype="application/octet-stream", headers=(), length=None, version=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body) if length is None else length))
        for k, v in list(headers) + (self.version_headers(version) if version is not None else []):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)
        self.wfile.flush()

    def serve_ok(self, data, honour_range=True, honour_if_range=True):
        m = re.match(r"bytes=(\d+)-$", self.headers.get("Range", ""))
        if_range = self.headers.get("If-Range")
        names = [v for _, v in self.version_headers(data)]
        if m and honour_range and (if_range is None or if_range in names or not honour_if_range):
            start = int(m.group(1))
            if start >= len(data):
                return self.send(416, b"", headers=[("Content-Range", "bytes */%d" % len(data))])
            return self.send(206, data[start:], headers=[("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))],
                             version=data)
        self.send(200, data, version=data)

    def part_then(self, data, stall):
        self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(data)))
        for k, v in self.version_headers(data):
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data[:512] if stall else data[: len(data) // 2])
        self.wfile.flush()
        if stall:
            time.sleep(20)  # the client's low-speed timeout ends it first
        self.close_connection = True

    def do_GET(self):
        self.validators = "both"  # a kept-alive connection serves the next request afresh
        if self.path in ("/hits", "/if-range"):
            with LOCK:
                return self.send(200, json.dumps(HITS if self.path == "/hits" else IF_RANGE).encode(), "application/json")
        parts = self.path.split("/")
        if len(parts) != 3 or parts[2] not in FILES:
            return self.send(404, b"no such path\n", "text/plain")
        mode, name = parts[1], parts[2]
        data = FILES[name]
        with LOCK:
            HITS.setdefault(self.path, []).append(self.headers.get("Range", ""))
            IF_RANGE.setdefault(self.path, []).append(self.headers.get("If-Range", ""))
            n = len(HITS[self.path])
        if mode.startswith("nv-"):
            self.validators, mode = "none", mode[3:]
        elif mode.startswith("lm-"):
            self.validators, mode = "lm", mode[3:]
        if (mode.endswith("-once") and n > 1) or (mode.endswith("-twice") and n > 2):
            mode = "ok"
        if mode == "changed-once" or (mode == "ignore-if-range" and n == 1):
            return self.part_then(other_version(data), stall=False)
        if mode == "ignore-if-range":
            return self.serve_ok(data, honour_if_range=False)
        if mode == "trunc-norange" and n > 1:
            return self.serve_ok(data, honour_range=False)
        if mode == "ok":
            return self.serve_ok(data)
        if mode in ("trunc-once", "trunc-norange", "trunc-twice", "trunc"):
            return self.part_then(data, stall=False)
        if mode in ("stall-once", "stall"):
            return self.part_then(data, stall=True)
        if mode in ("404", "500"):
            return self.send(int(mode), b"error page\n", "text/plain")
        if mode in ("503-once", "503", "429-once"):
            return self.send(int(mode[:3]), b"busy\n", "text/plain", [("Retry-After", "1")])
        if mode == "503-date-once":
            when = email.utils.formatdate(time.time() + 2, usegmt=True)
            return self.send(503, b"busy\n", "text/plain", [("Retry-After", when)])
        if mode == "408-once":
            return self.send(408, b"timeout\n", "text/plain", [("Connection", "close")])
        if mode == "html":
            return self.send(200, HTML, "text/html; charset=utf-8")
        if mode == "html-octet":
            return self.send(200, HTML)
        if mode == "wrong":
            return self.send(200, bytes(b ^ 0x5A for b in data), version=bytes(b ^ 0x5A for b in data))
        if mode == "long":
            return self.send(200, data + b"\0" * 100, version=data + b"\0" * 100)
        if mode == "redirect":
            return self.send(302, b"", "text/plain", [("Location", "/ok/" + name)])
        if mode == "redirect-file":
            return self.send(302, b"", "text/plain", [("Location", "file:///etc/passwd")])
        if mode == "redirect-loop":
            return self.send(302, b"", "text/plain", [("Location", self.path)])
        return self.send(404, b"unknown mode\n", "text/plain")


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        pass  # a client that hangs up on a stalled or truncated answer is the point, not an error


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--parent", type=int, default=0)
    ap.add_argument("--lifetime", type=float, default=120)
    ap.add_argument("--dump", metavar="DIR", help="write the served files into DIR and exit")
    a = ap.parse_args()
    if a.dump:
        for k, v in FILES.items():
            with open(os.path.join(a.dump, k), "wb") as f:
                f.write(v)
        return
    srv = Server(("127.0.0.1", 0), Handler)
    print("PORT %d" % srv.server_address[1], flush=True)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    t0 = time.time()
    while time.time() - t0 < a.lifetime:
        if a.parent and os.getppid() != a.parent:
            break
        time.sleep(0.2)
    os._exit(0)


if __name__ == "__main__":
    main()
