"""Load test of a running translation server (`python -m seq2seq.serve`).

    python -m benchmarks.serve_load --url http://127.0.0.1:8501 --sentences test.en \
        --clients 16 --seconds 60 --beam-size 5

`--clients` threads each keep one connection and send, one after another, requests of
`--per-request` sentences (taken in turn from `--sentences`) to `POST /v1/translate`, for
`--seconds` or until `--max-requests` have been sent, whichever comes first. Prints requests/s,
sentences/s, latency percentiles (p50/p95/p99, milliseconds, of the answered requests) and the
errors (answers other than 200, and failed connections), and with `--json` writes them there.
Standard library only: the client must not load the machine more than a real client would.
"""

import argparse
import http.client
import itertools
import json
import math
import sys
import threading
import time
import urllib.parse

REPORT_ROWS = (
    ("requests", "requests", "{:d}"),
    ("sentences", "sentences", "{:d}"),
    ("errors", "errors", "{:d}"),
    ("seconds", "seconds", "{:.2f}"),
    ("requests/s", "requests_per_second", "{:.2f}"),
    ("sentences/s", "sentences_per_second", "{:.2f}"),
    ("latency p50 ms", "latency_p50_ms", "{:.1f}"),
    ("latency p95 ms", "latency_p95_ms", "{:.1f}"),
    ("latency p99 ms", "latency_p99_ms", "{:.1f}"),
)


def build_parser():
    parser = argparse.ArgumentParser(prog="python -m benchmarks.serve_load", description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8501", help="the server")
    parser.add_argument("--sentences", required=True, help="UTF-8 file, one sentence a line")
    parser.add_argument("--clients", type=int, default=16, help="concurrent clients")
    parser.add_argument("--seconds", type=float, default=30.0, help="how long to send")
    parser.add_argument("--max-requests", type=int, default=100_000, help="at most, all clients")
    parser.add_argument("--per-request", type=int, default=1, help="sentences a request")
    parser.add_argument("--beam-size", type=int, help="default: the export's baked settings")
    parser.add_argument("--alpha", type=float)
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a request at most")
    parser.add_argument("--json", help="also write the report here")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    if min(args.clients, args.per_request, args.max_requests) < 1 or args.seconds <= 0:
        sys.exit("serve_load: --clients, --per-request, --max-requests and --seconds must be > 0")
    with open(args.sentences, encoding="utf-8") as lines:
        sentences = [line.rstrip("\n") for line in lines if line.strip()]
    if not sentences:
        sys.exit(f"serve_load: {args.sentences} has no sentences")
    options = {"beam_size": args.beam_size, "alpha": args.alpha}
    report = run_load(
        args.url,
        sentences,
        clients=args.clients,
        seconds=args.seconds,
        max_requests=args.max_requests,
        per_request=args.per_request,
        options={key: value for key, value in options.items() if value is not None},
        timeout=args.timeout,
    )
    print(format_report(report))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as out:
            json.dump(report, out, indent=2)
    return report


class _Load:
    """What the clients share: the next request's sentences, the budget, the results."""

    def __init__(self, sentences, per_request, max_requests, deadline):
        self.lock = threading.Lock()
        self.sentences = itertools.cycle(sentences)
        self.per_request = per_request
        self.left = max_requests
        self.deadline = deadline
        self.latencies = []
        self.errors = []

    def next_request(self):
        """The next request's sentences, or None when the time or the count is used up."""
        with self.lock:
            if self.left <= 0 or time.monotonic() >= self.deadline:
                return None
            self.left -= 1
            return [next(self.sentences) for _ in range(self.per_request)]

    def record(self, latency=None, error=None):
        with self.lock:
            if error is None:
                self.latencies.append(latency)
            else:
                self.errors.append(error)


def run_load(url, sentences, *, clients, seconds, max_requests, per_request, options, timeout):
    """Runs the clients; returns the report (a dict, the keys of `REPORT_ROWS` and more)."""
    parts = urllib.parse.urlsplit(url)
    start = time.monotonic()
    load = _Load(sentences, per_request, max_requests, start + seconds)
    threads = [
        threading.Thread(target=_client, args=(parts, load, options, timeout), daemon=True)
        for _ in range(clients)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - start
    answered = len(load.latencies)
    latencies = sorted(load.latencies)
    report = {
        "url": url,
        "clients": clients,
        "per_request": per_request,
        "options": options,
        "requests": answered,
        "sentences": answered * per_request,
        "errors": len(load.errors),
        "first_errors": load.errors[:5],
        "seconds": elapsed,
        "requests_per_second": answered / elapsed,
        "sentences_per_second": answered * per_request / elapsed,
    }
    for name, share in (("p50", 0.50), ("p95", 0.95), ("p99", 0.99)):
        report[f"latency_{name}_ms"] = _percentile(latencies, share) * 1000
    return report


def _client(parts, load, options, timeout):
    connection = None
    while (texts := load.next_request()) is not None:
        body = json.dumps({"text": texts, **options}).encode("utf-8")
        began = time.monotonic()
        try:
            connection = connection or http.client.HTTPConnection(
                parts.hostname, parts.port, timeout=timeout
            )
            connection.request("POST", "/v1/translate", body, {"Content-Type": "application/json"})
            answer = connection.getresponse()
            data = answer.read()
        except (OSError, http.client.HTTPException) as error:
            load.record(error=f"{type(error).__name__}: {error}")
            connection = None
            time.sleep(0.05)  # a server that is down is not hammered
            continue
        if answer.status == 200 and len(json.loads(data)["translations"]) == len(texts):
            load.record(latency=time.monotonic() - began)
        else:
            load.record(error=f"HTTP {answer.status}: {data[:200].decode('utf-8', 'replace')}")
    if connection:
        connection.close()


def _percentile(ordered, share):
    """The nearest-rank percentile of sorted values (NaN when there are none)."""
    if not ordered:
        return float("nan")
    return ordered[max(1, math.ceil(share * len(ordered))) - 1]


def format_report(report):
    lines = [f"{report['clients']} clients x {report['per_request']} sentence(s) a request"]
    lines += [f"{label:<16}{pattern.format(report[key])}" for label, key, pattern in REPORT_ROWS]
    lines += [f"error: {error}" for error in report["first_errors"]]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
