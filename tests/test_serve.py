"""`python -m seq2seq.serve` as a real process: its arguments, and SIGTERM with a request in
flight (the request is answered, then the process exits 0)."""

import json
import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from seq2seq import serve
from tests.serving import request

BODY = json.dumps({"text": ["dreihundert", "zwei"]}).encode("utf-8")


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_serving(proc, url, seconds=180):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"the server exited: {proc.communicate()[1][-3000:]}")
        try:
            return request(f"{url}/v1/models/translator")
        except OSError:
            time.sleep(0.25)
    raise AssertionError("the server did not start")


def _refuses_connections(port, seconds=30):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
        except ConnectionRefusedError:
            return True
        time.sleep(0.1)
    return False


def _read_response(connection):
    data = b""
    while chunk := connection.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


def test_sigterm_answers_the_request_in_flight_then_exits_0(tiny_run):
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    command = [sys.executable, "-m", "seq2seq.serve", "--model", str(tiny_run[0]), "--port"]
    proc = subprocess.Popen(
        [*command, str(port), "--max-wait-ms", "0", "--intra-op-threads", "1"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert _wait_until_serving(proc, url)[0] == 200
        in_flight = socket.create_connection(("127.0.0.1", port), timeout=60)
        head = f"POST /v1/translate HTTP/1.1\r\nHost: x\r\nContent-Length: {len(BODY)}\r\n\r\n"
        in_flight.sendall(head.encode("ascii") + BODY[:10])  # the request has begun
        alone = request(f"{url}/v1/translate", BODY)  # by now the server has read it
        assert alone[0] == 200
        proc.send_signal(signal.SIGTERM)
        assert _refuses_connections(port)  # no new requests
        assert proc.poll() is None  # still waiting for the one in flight
        in_flight.sendall(BODY[10:])
        assert _read_response(in_flight) == alone
        in_flight.close()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    log = proc.stderr.read()
    assert f"Uvicorn running on http://127.0.0.1:{port}" in log  # 127.0.0.1 unless --host


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "{tmp}/nowhere"], "--model {tmp}/nowhere: "),
        (["--model", "{tmp}", "--max-wait-ms", "-1"], "--max-wait-ms must be >= 0"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    args = [arg.format(tmp=tmp_path) for arg in args]
    assert serve.main(args) == 2
    err = capsys.readouterr().err
    assert err.startswith("seq2seq.serve: error: " + message.format(tmp=tmp_path))
    assert err.count("\n") == 1


def test_a_missing_serve_extra_is_named(tmp_path, tiny_run):
    blocker = tmp_path / "blocker"
    blocker.mkdir()
    (blocker / "starlette.py").write_text("raise ImportError('blocked', name='starlette')\n")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(blocker), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "seq2seq.serve", "--model", str(tiny_run[0])],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2
    assert "starlette is missing: pip install 'seq2seq-nmt[serve]'" in proc.stderr


def test_the_server_loads_no_training_model_or_data_code():
    probe = (
        "import sys, seq2seq.serve, seq2seq.inference.server, seq2seq.inference.service\n"
        "print(sorted(m for m in sys.modules if m.split('.')[:2] in"
        " (['seq2seq', 'training'], ['seq2seq', 'model'], ['seq2seq', 'data']) or m == 'hydra'))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=True
    )
    assert proc.stdout.strip() == "[]"
