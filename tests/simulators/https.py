"""A base for vendor API simulators: real HTTPS on loopback, requests recorded, faults scripted.

A simulator subclass answers ``route(request)``; this base does TLS, JSON, the request log and the
rate-limit windows that the vendors' reset headers describe.
"""

from __future__ import annotations

import json
import math
import ssl
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlparse


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    form: dict[str, str]
    json: Any
    at: float = field(default_factory=time.time)


@dataclass
class Reply:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


class HttpsSimulator:
    def __init__(self, cert: Path, key: Path) -> None:
        self.requests: list[Request] = []
        self.faults: dict[str, list[Reply | None]] = {}  # path -> scripted replies, in request order
        self.rate_limited_until: dict[str, int] = {}  # path -> epoch second the window resets
        self._armed: dict[str, int] = {}
        self.early_retries = 0  # requests that came back before the announced reset
        self.lock = threading.Lock()
        simulator = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *_: object) -> None:
                pass

            def _serve(self) -> None:
                url = urlparse(self.path)
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode() if length else ""
                content_type = self.headers.get("Content-Type", "")
                request = Request(
                    self.command, url.path, {k: v[0] for k, v in parse_qs(url.query).items()},
                    {k.lower(): v for k, v in self.headers.items()},
                    {k: v[0] for k, v in parse_qs(raw).items()} if "form" in content_type else {},
                    json.loads(raw) if raw and "json" in content_type else None,
                )
                with simulator.lock:
                    simulator.requests.append(request)
                reply = simulator._dispatch(request)
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = _serve

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(cert), str(key))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.base_url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> HttpsSimulator:
        self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    # ---- what subclasses use ----

    def route(self, request: Request) -> Reply:
        raise NotImplementedError

    def throttled(self, request: Request, reset: int) -> Reply:
        """The vendor's "rate limit exceeded" reply while a window is closed until ``reset`` (epoch seconds)."""
        raise NotImplementedError

    def close_window(self, path: str, seconds: int) -> None:
        """The next request to ``path`` finds its rate-limit window used up for about ``seconds`` more."""
        self._armed[path] = seconds

    def paths(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def _dispatch(self, request: Request) -> Reply:
        with self.lock:
            if request.path in self._armed:
                until = math.ceil(request.at + self._armed.pop(request.path))
                self.rate_limited_until[request.path] = until
                return self.throttled(request, until)
            until = self.rate_limited_until.get(request.path, 0)
            if request.at < until:  # the client came back before the time it was told
                self.early_retries += 1
                return self.throttled(request, until)
            self.rate_limited_until.pop(request.path, None)
            faults = self.faults.get(request.path)
            fault = faults.pop(0) if faults else None
        return fault or self.route(request)


def http_date(epoch: float | None = None) -> str:
    return formatdate(epoch if epoch is not None else time.time(), usegmt=True)


def link_header(base_url: str, path: str, query: dict[str, str], rel_next: dict[str, str] | None) -> str:
    links = [f'<{base_url}{path}?{urlencode(query)}>; rel="self"']
    if rel_next is not None:
        links.append(f'<{base_url}{path}?{urlencode(query | rel_next)}>; rel="next"')
    return ", ".join(links)
