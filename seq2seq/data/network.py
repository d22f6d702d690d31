"""Quick reachability check, so that offline downloads fail at once instead of retrying."""

import concurrent.futures
import socket


def _connect(host: str, timeout: float) -> None:
    socket.create_connection((host, 443), timeout=timeout).close()


def internet_reachable(hosts: list[str], timeout: float = 3.0) -> bool:
    """Returns whether every host accepts a TCP connection on port 443 within ``timeout``.

    The connections run in worker threads so that a hanging DNS resolver is bounded by the
    timeout too (``socket.create_connection`` does not limit ``getaddrinfo``).

    Args:
        hosts: Host names to try, e.g. ``["www.statmt.org"]``.
        timeout: Seconds allowed per host (all hosts are tried in parallel).
    """
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(len(hosts), 1))
    try:
        futures = [pool.submit(_connect, host, timeout) for host in hosts]
        for future in futures:
            future.result(timeout=timeout + 0.5)
        return True
    except (OSError, concurrent.futures.TimeoutError):
        return False
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
