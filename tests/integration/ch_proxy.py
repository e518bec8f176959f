#!/usr/bin/env python3
"""ch_proxy.py — an HTTP proxy in front of ClickHouse for integration tests.

Usage: ch_proxy.py PORT_FILE UPSTREAM_URL [--log-inserts FILE] [--slow PREFIX SECONDS]
                   [--hold PREFIX GATE_FILE]

Listens on a free loopback port (written to PORT_FILE once listening) and forwards every POST to
UPSTREAM_URL with its Content-Encoding, answering with ClickHouse's status and body.
  --log-inserts FILE   per INSERT, appends "<encoding> <bytes sent> <bytes decoded>" (the body
                       decoded with the standard tools, as ClickHouse will read it)
  --slow PREFIX S      waits S seconds before forwarding a body that starts with PREFIX
  --hold PREFIX GATE   holds every body that starts with PREFIX until GATE_FILE exists (at most
                       300 s), appending a line to GATE_FILE.held when it starts holding one
"""
import gzip, http.server, os, subprocess, sys, time, urllib.error, urllib.request

port_file, upstream = sys.argv[1], sys.argv[2].rstrip("/")
log_inserts, slow_prefix, slow_seconds, hold_prefix, gate = None, None, 0.0, None, None
args = sys.argv[3:]
while args:
    if args[0] == "--log-inserts":
        log_inserts, args = args[1], args[2:]
    elif args[0] == "--hold":
        hold_prefix, gate, args = args[1].encode(), args[2], args[3:]
    elif args[0] == "--slow":
        slow_prefix, slow_seconds, args = args[1].encode(), float(args[2]), args[3:]
    else:
        sys.exit("ch_proxy.py: unknown argument " + args[0])


def decode(enc, body):
    if enc == "gzip":
        return gzip.decompress(body)
    if enc in ("zstd", "lz4"):
        return subprocess.run([enc, "-dcq"], input=body, capture_output=True, check=True).stdout
    return body


class Proxy(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        enc = self.headers.get("Content-Encoding", "none")
        if slow_prefix is not None and body.startswith(slow_prefix):
            time.sleep(slow_seconds)
        if hold_prefix is not None and body.startswith(hold_prefix) and not os.path.exists(gate):
            with open(gate + ".held", "a") as f:
                f.write("held\n")
            deadline = time.monotonic() + 300
            while not os.path.exists(gate) and time.monotonic() < deadline:
                time.sleep(0.05)
        req = urllib.request.Request(upstream + self.path, data=body, method="POST")
        if enc != "none":
            req.add_header("Content-Encoding", enc)
        if log_inserts:
            plain = decode(enc, body)
            # the rows' INSERTs (the insert ledger's small statements go uncompressed)
            if plain.startswith(b"INSERT") and b"cdcpipe_ledger" not in plain.split(b"\n", 1)[0]:
                with open(log_inserts, "a") as f:
                    f.write("%s %d %d\n" % (enc, len(body), len(plain)))
        try:
            with urllib.request.urlopen(req) as r:
                status, answer = r.status, r.read()
        except urllib.error.HTTPError as e:
            status, answer = e.code, e.read()
        self.send_response(status)
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
with open(port_file + ".tmp", "w") as f:
    f.write(str(server.server_address[1]))
os.rename(port_file + ".tmp", port_file)
server.serve_forever()
