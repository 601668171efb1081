#!/usr/bin/env python3
"""A misbehaving Grafana for the grafana plugin's robustness test: every
request gets HTTP 200 with the body given for its method (argv: port, GET
body, POST/PUT body). GET /_state answers 200 {} so a test can wait for it."""
import http.server
import sys

PORT, GET_BODY, WRITE_BODY = int(sys.argv[1]), sys.argv[2], sys.argv[3]


class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self, body):
        n = int(self.headers.get("Content-Length") or 0)
        if n:
            self.rfile.read(n)
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.answer("{}" if self.path == "/_state" else GET_BODY)

    def do_POST(self):
        self.answer(WRITE_BODY)

    do_PUT = do_POST


http.server.ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
