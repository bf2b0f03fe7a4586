"""Markdown table of a results file written by run.sh: ours next to PyTorch's, and the ratio.

  python experiments/benchmarks/table.py experiments/benchmarks/results_cpu_2026-11-30.jsonl

Lines are paired by workload (benchmark, model, image size, batch, adversarial term); when a
workload was measured more than once, the last line of each framework is used.
"""

import json
import sys


def workload(r: dict) -> tuple:
  if r["benchmark"] == "stylize":
    return ("stylize", r["image_size"])
  return (
    "train",
    r["model"],
    r["image_size"],
    r["global_batch_size"],
    r["adversarial"],
    r.get("parallelism", "jit"),
    r.get("dtype", "float32"),
  )


def name(r: dict) -> str:
  if r["benchmark"] == "stylize":
    return f"adain stylize {r['image_size']} px"
  extra = "" if r["adversarial"] or r["model"] == "cyclegan" else ", no adversarial"
  extra += "" if r.get("parallelism", "jit") == "jit" else f", {r['parallelism']}"
  extra += "" if r.get("dtype", "float32") == "float32" else f", {r['dtype']}"
  return f"{r['model']} train {r['image_size']} px, batch {r['global_batch_size']}{extra}"


def seconds(r: dict) -> float:
  return r["step_s"] if r["benchmark"] == "train" else r["latency_ms"] / 1000


def main(path: str):
  ours, torch = {}, {}
  with open(path) as f:
    for line in f:
      r = json.loads(line)
      (torch if r.get("framework") == "pytorch" else ours)[workload(r)] = r
  print(
    "| workload | GFLOP/step ours (XLA) / PyTorch | ours s | PyTorch s | PyTorch s / ours s |"
    " compile s |"
  )
  print("|---|---|---|---|---|---|")
  for key, r in ours.items():
    t = torch.get(key)
    gflop = (
      f"{r['flops_per_step'] / 1e9:.0f} / {t['flops_per_step'] / 1e9:.0f}"
      if t and "flops_per_step" in r
      else "—"
    )
    ts = f"{seconds(t):.2f}" if t else "—"
    ratio = f"{seconds(t) / seconds(r):.2f}" if t else "—"
    print(f"| {name(r)} | {gflop} | {seconds(r):.2f} | {ts} | {ratio} | {r['compile_s']:.1f} |")


if __name__ == "__main__":
  main(sys.argv[1])
