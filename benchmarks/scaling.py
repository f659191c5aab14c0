"""Wall time and cost estimates for the guide's dataset sizes, from measured per-step figures.

    python benchmarks/scaling.py     # reads benchmarks/results/{flops,data}.json, updates docs/scaling.md

Measured inputs: each model's training step time and FLOPs on this machine (benchmarks/flops.py)
and decoded clips per second per DataLoader worker (benchmarks/data.py). Assumed inputs, stated in
the table: a GPU's sustained share of its bf16 peak, and a price per GPU-hour. GPU rows are
therefore estimates, not measurements.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from plots import pyplot

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOC = ROOT / "docs" / "scaling.md"

DATASETS = {"WebVid-2M": 2.5e6, "WebVid-10M": 10.7e6, "HowTo100M clips": 136e6}  # clips per epoch
H100_BF16_TFLOPS = 989.0  # dense, NVIDIA's data sheet (SXM)
ASSUMED_UTILISATION = 0.35  # sustained share of that peak for small transformers, an assumption
ASSUMED_USD_PER_GPU_HOUR = 2.5  # an assumption: on-demand cloud prices vary
ASSUMED_WORKERS_PER_NODE = 64  # decode processes on one 8-GPU node's CPUs, an assumption


def estimates() -> tuple[str, list[dict]]:
    flops = json.loads((RESULTS / "flops.json").read_text())
    data = json.loads((RESULTS / "data.json").read_text())
    per_worker = max(data["clips_per_second"].values()) / max(1, max(int(k) for k in data["clips_per_second"]))
    rows = []
    for m in flops["models"]:
        cpu_rate = m["batch_size"] / m["step_s"]  # videos / s on this CPU
        gpu_rate = ASSUMED_UTILISATION * H100_BF16_TFLOPS * 1e3 / m["gflop_per_video"]
        node_rate = min(8 * gpu_rate, ASSUMED_WORKERS_PER_NODE * per_worker)  # compute- or decode-bound
        for name, clips in DATASETS.items():
            node_hours = clips / node_rate / 3600
            rows.append({"model": m["family"], "dataset": name, "clips": clips, "cpu_videos_per_s": cpu_rate,
                         "cpu_days": clips / cpu_rate / 86400, "gpu_videos_per_s": gpu_rate,
                         "compute_minutes_on_8": clips / (8 * gpu_rate) / 60, "node_hours": node_hours,
                         "decode_bound": node_rate < 8 * gpu_rate, "usd": 8 * node_hours * ASSUMED_USD_PER_GPU_HOUR,
                         "workers_per_gpu": gpu_rate / per_worker})
    lines = [f"Per epoch, from measured steps on `{flops['hardware']}` ({flops['command']}) and "
             f"{per_worker:.0f} decoded 16x64x64 clips/s per DataLoader worker (benchmarks/data.py). GPU columns "
             f"assume {ASSUMED_UTILISATION:.0%} of an H100's {H100_BF16_TFLOPS:.0f} TFLOP/s bf16 peak and "
             f"${ASSUMED_USD_PER_GPU_HOUR}/GPU-hour, and {ASSUMED_WORKERS_PER_NODE} decode workers per 8-GPU node: "
             "estimates, not measurements.", "",
             "| stage | dataset | clips | CPU, 2 threads (measured rate) | 8 H100, compute only (est.) | "
             "8 H100 node with decoding (est.) | cost (est.) | decode workers to keep 1 GPU busy |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        bound = "decode-bound" if r["decode_bound"] else "compute-bound"
        lines.append(f"| {r['model']} | {r['dataset']} | {r['clips'] / 1e6:.1f}M | {r['cpu_days']:.1f} days "
                     f"({r['cpu_videos_per_s']:.0f} videos/s) | {r['compute_minutes_on_8']:.1f} min | "
                     f"{r['node_hours']:.1f} h ({bound}) | ${r['usd']:.0f} | {r['workers_per_gpu']:.0f} |")
    return "\n".join(lines) + "\n", rows


def main() -> None:
    table, rows = estimates()
    (RESULTS / "scaling.json").write_text(json.dumps(rows, indent=2) + "\n")
    doc = DOC.read_text()
    doc = re.sub(r"<!-- estimate:start -->.*<!-- estimate:end -->",
                 lambda _: f"<!-- estimate:start -->\n{table}<!-- estimate:end -->", doc, flags=re.S)
    DOC.write_text(doc)
    plot(rows, RESULTS / "scaling.png")
    print(table)
    print(f"updated {DOC} and wrote {RESULTS / 'scaling.png'}")


def plot(rows: list[dict], path: Path) -> None:
    """Hours per epoch for each (stage, dataset): measured CPU rate against the estimated 8-GPU node."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3.6))
    labels = [f"{r['model']}\n{r['dataset']}" for r in rows]
    x = range(len(rows))
    ax.bar([i - 0.2 for i in x], [24 * r["cpu_days"] for r in rows], width=0.4, label="CPU, 2 threads (measured rate)")
    ax.bar([i + 0.2 for i in x], [r["node_hours"] for r in rows], width=0.4, label="8 H100 node with decoding (estimate)")
    ax.set_yscale("log")
    ax.set_ylabel("hours per epoch")
    ax.set_xticks(list(x), labels, fontsize=6)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


if __name__ == "__main__":
    main()
