"""A real server on 127.0.0.1 for the tests, in a thread of the test process, and its client."""

import contextlib
import http.client
import json
import socket
import threading
import time
import urllib.parse

from seq2seq.inference.exported import load_export
from seq2seq.inference.server import create_app, http_server
from seq2seq.inference.service import TranslationService


@contextlib.contextmanager
def running_server(export_dir, *, name="tiny", **settings):
    """Yields (base URL, service) of a server of `export_dir` on a free port of 127.0.0.1."""
    limits = {"max_sentences": 8, "max_body_bytes": 4096}
    batching = {"max_batch_size": 4, "max_wait_ms": 20, "workers": 2, "max_beam_size": 8}
    for key in list(settings):
        (limits if key in limits else batching)[key] = settings.pop(key)
    service = TranslationService(load_export(export_dir), default_alpha=0.6, **batching)
    app = create_app(service, name=name, export_dir=export_dir, **limits)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = http_server(app, host="127.0.0.1", port=port, log_level="warning")
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}", service
    finally:
        server.should_exit = True
        thread.join(timeout=60)


def request(url, body=None, method=None):
    """(status, decoded JSON or text) of one request; `body` is a JSON value or raw bytes."""
    parts = urllib.parse.urlsplit(url)
    if body is not None and not isinstance(body, bytes):
        body = json.dumps(body).encode("utf-8")
    connection = http.client.HTTPConnection(parts.hostname, parts.port, timeout=120)
    try:
        connection.request(method or ("GET" if body is None else "POST"), parts.path, body)
        answer = connection.getresponse()
        data = answer.read().decode("utf-8")
        kind = answer.getheader("content-type", "")
        return answer.status, json.loads(data) if kind.startswith("application/json") else data
    finally:
        connection.close()
