"""Load test of ``t2v serve``: concurrent clients against a local server with the default model, as JSON.

    python benchmarks/serve_load.py --clients 20 --seconds 60   # -> benchmarks/results/serve_load.json

The server runs as ``t2v serve`` in a subprocess with its temporary folder inside one of ours, so
its files can be inspected. Each client loops: POST /generate, download the mp4 on success, or wait
the server's Retry-After on "busy". Reported: requests served, p50/p95 latency of the served ones
(queue wait included), busy answers, any other errors, files left half-written or unreadable, and
the server's resident memory after warm-up and after the run (target: under 10% growth).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import numpy as np
import psutil
from plots import pyplot

from t2v.hardware import cpu_name
from t2v.video import read_video

PROMPTS = ["a large red circle moving left", "a small blue square moving up", "a green triangle moving right",
           "a large yellow square falling", "a small white circle staying still"]
WARMUP_REQUESTS = 3
START_S = 300


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, temp: Path, max_queue: int, timeout_s: float) -> subprocess.Popen:
    """``t2v serve`` with TMPDIR inside ``temp``: its results folder (and Gradio's cache) land there."""
    env = {**os.environ, "TMPDIR": str(temp), "OMP_WAIT_POLICY": "PASSIVE", "HF_HUB_OFFLINE": "1",
           "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, "-m", "t2v.cli", "serve", "--port", str(port), "--max-queue", str(max_queue),
               "--timeout", str(timeout_s)]
    server = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.monotonic() + START_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise SystemExit(f"t2v serve exited: {server.stdout.read()}")
        try:
            if httpx.get(f"http://127.0.0.1:{port}/models", timeout=5).status_code == 200:
                return server
        except httpx.TransportError:
            time.sleep(0.5)
    server.kill()
    raise SystemExit(f"t2v serve did not answer within {START_S} s")


class Tally:
    """What the clients saw, shared between their threads."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.latencies: list[float] = []
        self.busy = 0
        self.errors: Counter = Counter()

    def served(self, seconds: float) -> None:
        with self.lock:
            self.latencies.append(seconds)

    def refused(self) -> None:
        with self.lock:
            self.busy += 1

    def failed(self, what: str) -> None:
        with self.lock:
            self.errors[what[:160]] += 1


def client_loop(url: str, stop_at: float, tally: Tally, seed: int) -> None:
    """Ask until ``stop_at``; a request started before then is always finished and counted."""
    rng = random.Random(seed)
    with httpx.Client(base_url=url, timeout=120) as http:
        while time.monotonic() < stop_at:
            body = {"prompt": rng.choice(PROMPTS), "seed": rng.randrange(2**31)}
            start = time.monotonic()
            try:
                answer = http.post("/generate", json=body)
                if answer.status_code == 503 and answer.json() == {"error": "busy, retry later"}:
                    tally.refused()
                    time.sleep(min(float(answer.headers.get("retry-after", 1)), max(0.0, stop_at - time.monotonic())))
                    continue
                if answer.status_code != 200:
                    tally.failed(f"{answer.status_code} {answer.text}")
                    continue
                seconds = time.monotonic() - start
                video = http.get(answer.json()["video_url"])
                if video.status_code != 200 or not video.content:
                    tally.failed(f"download {video.status_code}")
                    continue
                tally.served(seconds)
            except (httpx.HTTPError, ValueError, KeyError) as e:
                tally.failed(f"{type(e).__name__}: {e}")


def inspect_files(temp: Path) -> dict:
    """Half-written files (the writer's ``.partial`` names) and result files that do not decode."""
    partial = [p for p in temp.rglob("*") if p.is_file() and ".partial" in p.name]
    results = [p for p in temp.glob("t2v-serve-*/*") if p.suffix in (".mp4", ".png") and ".partial" not in p.name]
    unreadable = []
    for path in results:
        try:
            if path.suffix == ".mp4":
                read_video(path)
            else:
                from PIL import Image

                Image.open(path).verify()
        except Exception as e:  # noqa: BLE001 - any failure to read is what we count
            unreadable.append(f"{path.name}: {e}")
    return {"partial_files": len(partial), "result_files_checked": len(results), "unreadable_files": len(unreadable),
            "unreadable_examples": unreadable[:5]}


def rss_mb(process: psutil.Process) -> float:
    return process.memory_info().rss / 2**20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-queue", type=int, default=8, help="the server's --max-queue (its default)")
    parser.add_argument("--timeout", type=float, default=60.0, help="the server's --timeout (its default)")
    parser.add_argument("--json", type=Path, default=Path(__file__).parent / "results" / "serve_load.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="serve-load-") as folder:
        temp, port = Path(folder), free_port()
        url = f"http://127.0.0.1:{port}"
        server = start_server(port, temp, args.max_queue, args.timeout)
        process = psutil.Process(server.pid)
        try:
            models = httpx.get(f"{url}/models").json()
            for i in range(WARMUP_REQUESTS):  # model, encoder and first-call allocations settle
                httpx.post(f"{url}/generate", json={"prompt": PROMPTS[i % len(PROMPTS)], "seed": i}, timeout=120)
            rss_before = rss_mb(process)
            tally, stop_at = Tally(), time.monotonic() + args.seconds
            clients = [threading.Thread(target=client_loop, args=(url, stop_at, tally, i)) for i in range(args.clients)]
            start = time.monotonic()
            for client in clients:
                client.start()
            for client in clients:
                client.join()
            wall_s = time.monotonic() - start
            rss_after = rss_mb(process)
            files = inspect_files(temp)
        finally:
            server.terminate()
            server.wait(timeout=60)
        left_after_shutdown = sorted(p.name for p in temp.glob("t2v-serve-*"))

    latencies = np.array(tally.latencies)
    served = len(latencies)
    result = {
        "model": models["default"], "clients": args.clients, "seconds": args.seconds, "wall_s": round(wall_s, 1),
        "server": {"max_queue": args.max_queue, "timeout_s": args.timeout},
        "requests_served": served, "served_per_s": round(served / wall_s, 3),
        "latency_s": {"p50": round(float(np.percentile(latencies, 50)), 3) if served else None,
                      "p95": round(float(np.percentile(latencies, 95)), 3) if served else None,
                      "max": round(float(latencies.max()), 3) if served else None},
        "busy_answers": tally.busy, "other_errors": sum(tally.errors.values()),
        "error_examples": dict(tally.errors.most_common(5)),
        **files, "results_folder_left_after_shutdown": left_after_shutdown,
        "rss_mb": {"before": round(rss_before, 1), "after": round(rss_after, 1),
                   "growth_pct": round(100 * (rss_after - rss_before) / rss_before, 2)},
        "cpu_count": os.cpu_count(), "cpu": cpu_name(),
        "latencies_s": sorted(round(float(x), 3) for x in latencies),
    }
    print(json.dumps(result, indent=2))
    ok = result["other_errors"] == 0 and files["partial_files"] == 0 and files["unreadable_files"] == 0 \
        and result["rss_mb"]["growth_pct"] <= 10
    print(f"{served} served ({result['served_per_s']}/s), p50 {result['latency_s']['p50']} s, "
          f"p95 {result['latency_s']['p95']} s, {tally.busy} busy, {result['other_errors']} other errors, "
          f"{files['partial_files']} half-written, RSS {rss_before:.0f} -> {rss_after:.0f} MB "
          f"({result['rss_mb']['growth_pct']:+.1f}%): {'meets the targets' if ok else 'MISSES A TARGET'}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2) + "\n")
    plot(result, args.json.with_suffix(".png"))


def plot(result: dict, path: Path) -> None:
    """Latency of the served requests, and what every answer was."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3.2), gridspec_kw={"width_ratios": [2, 1]})
    left.hist(result["latencies_s"], bins=20, color="tab:blue")
    for name in ("p50", "p95"):
        left.axvline(result["latency_s"][name], color="k", linestyle="--" if name == "p95" else "-", label=name)
    left.set_xlabel("seconds per request (queue wait + generation)")
    left.set_title(f"{result['clients']} clients, {result['seconds']:g} s, {result['model']}")
    left.legend()
    answers = {"served": result["requests_served"], "busy (503)": result["busy_answers"], "errors": result["other_errors"]}
    right.bar(list(answers), list(answers.values()), color=["tab:green", "tab:orange", "tab:red"])
    right.set_title(f"answers (RSS {result['rss_mb']['growth_pct']:+.1f}%)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
