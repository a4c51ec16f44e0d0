"""A bounded load test on loopback: 32 concurrent clients for 20 s against the real server
process. Zero failed requests, and the server's memory does not keep growing."""

from __future__ import annotations

import os
import statistics
import threading
import time

import httpx
import psutil
import pytest
from serving_fixtures import ServerProcess, shared_models

CLIENTS = 32
SECONDS = float(os.environ.get("TEXTRNN_LOAD_SECONDS", "20"))
WARM_UP_SECONDS = 4.0


@pytest.mark.slow
def test_load_no_failures_and_flat_memory(tmp_path_factory):
    models_dir = shared_models(tmp_path_factory, "both")
    with ServerProcess(models_dir, "--no-access-log") as server:
        process = psutil.Process(server.proc.pid)
        stop = threading.Event()
        lock = threading.Lock()
        counts = {"ok": 0, "failed": 0}
        failures: list[str] = []
        rss: list[tuple[float, int]] = []

        def client(index: int) -> None:
            # Mostly single texts (the common case), some batches and short generations.
            with httpx.Client(base_url=server.url, timeout=30) as http:
                n = 0
                while not stop.is_set():
                    n += 1
                    try:
                        if n % 25 == 0:
                            response = http.post("/v1/generate", json={
                                "prompt": "En un", "length": 20, "strategy": "sample", "seed": n})
                        elif n % 5 == 0:
                            response = http.post("/v1/sentiment", json={
                                "texts": [f"client {index} says great", "awful, bad film"]})
                        else:
                            response = http.post("/v1/sentiment",
                                                 json={"text": f"request {n} of client {index}"})
                        good = response.status_code == 200
                        detail = f"{response.status_code} {response.text[:200]}"
                    except httpx.HTTPError as exc:
                        good, detail = False, f"{type(exc).__name__}: {exc}"
                    with lock:
                        counts["ok" if good else "failed"] += 1
                        if not good and len(failures) < 5:
                            failures.append(detail)

        threads = [threading.Thread(target=client, args=(i,), daemon=True)
                   for i in range(CLIENTS)]
        start = time.monotonic()
        for thread in threads:
            thread.start()
        while (elapsed := time.monotonic() - start) < SECONDS:
            rss.append((elapsed, process.memory_info().rss))
            time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=60)

    assert counts["failed"] == 0, failures
    assert counts["ok"] > CLIENTS * 5, counts
    # Memory: after warm-up, the last quarter's median is within 10% (or 30 MB) of the first
    # quarter's, i.e. no leak proportional to the requests served.
    steady = [value for at, value in rss if at >= WARM_UP_SECONDS]
    quarter = max(1, len(steady) // 4)
    early, late = statistics.median(steady[:quarter]), statistics.median(steady[-quarter:])
    allowed = max(0.10 * early, 30 * 2**20)
    print(f"\n{counts['ok']} requests in {SECONDS:.0f} s ({counts['ok'] / SECONDS:.0f}/s); "
          f"RSS {early / 2**20:.0f} MiB -> {late / 2**20:.0f} MiB")
    assert late - early < allowed, (early, late)
