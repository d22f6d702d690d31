"""The load test against a real server of the tiny export: its report must add up (never its
speed: the machine is shared)."""

import json

import pytest

from benchmarks import serve_load
from tests.serving import running_server


@pytest.fixture(scope="module")
def server(tiny_run):
    with running_server(tiny_run[0] / "export") as (url, _):
        yield url


@pytest.fixture
def sentences(tmp_path):
    path = tmp_path / "sentences.txt"
    path.write_text("dreihundert\nzwei\n\nsiebenhundertelf\n", encoding="utf-8")
    return path


def test_two_clients_for_a_second_report_what_they_did(server, sentences, tmp_path, capsys):
    out = tmp_path / "report.json"
    args = ["--url", server, "--sentences", str(sentences), "--clients", "2", "--seconds", "1"]
    report = serve_load.main([*args, "--per-request", "2", "--beam-size", "2", "--json", str(out)])
    assert report["errors"] == 0 and report["requests"] > 0
    assert report["sentences"] == 2 * report["requests"]
    assert report["seconds"] >= 1
    assert report["requests_per_second"] == pytest.approx(report["requests"] / report["seconds"])
    assert 0 < report["latency_p50_ms"] <= report["latency_p95_ms"] <= report["latency_p99_ms"]
    assert report["latency_p99_ms"] < report["seconds"] * 1000
    assert json.loads(out.read_text()) == report
    printed = capsys.readouterr().out
    assert "2 clients x 2 sentence(s) a request" in printed
    assert f"requests        {report['requests']}" in printed
    assert "latency p99 ms" in printed


def test_the_request_budget_bounds_the_run(server, sentences):
    args = ["--url", server, "--sentences", str(sentences), "--clients", "3"]
    report = serve_load.main([*args, "--seconds", "60", "--max-requests", "5"])
    assert (report["requests"], report["errors"]) == (5, 0)
    assert report["seconds"] < 60


def test_refused_requests_and_a_server_that_is_down_count_as_errors(server, sentences):
    args = ["--url", server, "--sentences", str(sentences), "--clients", "2", "--seconds", "0.5"]
    refused = serve_load.main([*args, "--beam-size", "0"])
    assert refused["requests"] == 0 and refused["errors"] > 0
    assert refused["first_errors"][0].startswith("HTTP 400: ")
    down = serve_load.main(["--url", "http://127.0.0.1:9", *args[2:], "--max-requests", "4"])
    assert down["requests"] == 0 and 0 < down["errors"] <= 4
    assert down["first_errors"][0].startswith("ConnectionRefusedError")


def test_percentiles_are_nearest_rank():
    ordered = [float(i) for i in range(1, 101)]
    assert [serve_load._percentile(ordered, q) for q in (0.5, 0.95, 0.99)] == [50, 95, 99]
    assert serve_load._percentile([7.0], 0.99) == 7.0
