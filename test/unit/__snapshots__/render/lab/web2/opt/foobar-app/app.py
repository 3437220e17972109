#!/usr/bin/python3
# Managed by foobar: the default app for www.foobar.test, used when the inventory names no app.
# GET / -> a page; GET /healthz -> 200 "ok <hostname>"; anything else 404. Listens on 127.0.0.1 only; nginx fronts it.
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

HOST = socket.gethostname()


class Handler(BaseHTTPRequestHandler):
    server_version = "foobar-app"

    def do_GET(self):
        path = self.path.split("?", 1)[0]
        status = 200
        if path == "/healthz":
            body = ("ok " + HOST + "\n").encode()
            ctype = "text/plain"
        elif path == "/":
            body = ("<!doctype html><title>www.foobar.test</title><h1>www.foobar.test</h1><p>served by " + HOST + "</p>\n").encode()
            ctype = "text/html; charset=utf-8"
        else:
            # Only the two paths it has: anything else is not found (no page answers every URL).
            status = 404
            body = b"not found\n"
            ctype = "text/plain"
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", HOST)
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, fmt, *args):
        pass


ThreadingHTTPServer.daemon_threads = True
ThreadingHTTPServer(("127.0.0.1", 8080), Handler).serve_forever()
