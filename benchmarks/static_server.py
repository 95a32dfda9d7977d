"""A static file server for the download benchmark: the same bytes as the emulator's composite, from a file.

``POST`` to the composite download path answers with the file through ``sendfile`` (no Python on the data
path, so the server's CPU does not decide the client's speed); every other request is passed on to the
emulator, so the operator's account and estimate calls still get real answers. HTTP/1.1 with keep-alive.

    python benchmarks/static_server.py FILE UPSTREAM_URL [CERT KEY]   # prints its URL, then serves

With a certificate and key, it serves HTTPS (as the real API does): the file is then sent in 1 MiB writes,
which OpenSSL encrypts into records of at most 16 KiB (``sendfile`` cannot encrypt).
"""

from __future__ import annotations

import http.client
import os
import ssl
import sys
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COMPOSITE = "/api/satelliteimages/process/composite"


def handler(path: str, upstream: str) -> type[BaseHTTPRequestHandler]:
    target = urllib.parse.urlsplit(upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            pass

        def _body(self) -> bytes:
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _serve_file(self) -> None:
            self._body()
            size = os.path.getsize(path)
            self.send_response(200)
            self.send_header("Content-Type", "image/tiff")
            self.send_header("Content-Length", str(size))
            self.send_header("Content-Disposition", 'attachment; filename="composite.tif"')
            self.end_headers()
            self.wfile.flush()
            with open(path, "rb") as handle:
                if isinstance(self.connection, ssl.SSLSocket):
                    while chunk := handle.read(1024 * 1024):
                        self.connection.sendall(chunk)
                else:
                    self.connection.sendfile(handle)

        def _forward(self) -> None:
            body = self._body()
            connection = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "connection")}
            connection.request(self.command, self.path, body=body or None, headers=headers)
            answer = connection.getresponse()
            data = answer.read()
            self.send_response(answer.status)
            for key, value in answer.getheaders():
                if key.lower() not in ("content-length", "transfer-encoding", "connection", "date", "server"):
                    self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            connection.close()

        def do_POST(self) -> None:
            if self.path.split("?", 1)[0] == COMPOSITE:
                self._serve_file()
            else:
                self._forward()

        def do_GET(self) -> None:
            self._forward()

    return Handler


def main() -> None:
    path, upstream, tls = sys.argv[1], sys.argv[2], sys.argv[3:5]
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler(path, upstream))
    scheme = "http"
    if tls:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*tls)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    print(f"{scheme}://127.0.0.1:{server.server_address[1]}", flush=True)
    server.serve_forever()


if __name__ == "__main__":
    main()
