"""Runs the study: every arm x seed, its evaluation, then the table and the figures.

    python experiments/adversarial_ablation/run.py [--arms=a,b] [--seeds=0,1,2] [--report_only]

Each (arm, seed) trains in runs/ARM/seed_S (skipped when its eval.json exists, so an interrupted
study resumes), exactly as `python -m ganstyle_jax.main --config=experiments/adversarial_ablation/
ARM.py --workdir=runs/ARM/seed_S --config.seed=S` would, then is evaluated as
`python -m ganstyle_jax.evaluate --workdir=runs/ARM/seed_S --out=runs/ARM/seed_S/eval.json` would
(same functions, one process, so TF/JAX start once). Writes results.md, results.json and
figures/*.png beside this file. Needs matplotlib (`pip install -e '.[experiments]'`).
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import runpy
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ARMS = ("adain_plain", "adain_plain_gram", "adain_nonsat", "adain_lsgan", "adain_hinge", "cyclegan")
LABELS = {
  "adain_plain": "AdaIN, mean/std, w_adv=0",
  "adain_plain_gram": "AdaIN, Gram, w_adv=0",
  "adain_nonsat": "AdaIN + nonsat",
  "adain_lsgan": "AdaIN + lsgan",
  "adain_hinge": "AdaIN + hinge",
  "cyclegan": "CycleGAN",
}
TABLE = ("psnr", "ssim", "swd", "style_mean_std", "style_gram", "content_distance", "fid_vgg")
HIGHER = {"psnr", "ssim"}
STEPS_OVERRIDE = 0  # --steps: a quick smoke run of the script, not the study


RUNS = os.path.join(HERE, "runs")


def workdir(arm: str, seed: int) -> str:
  return os.path.join(RUNS, arm, f"seed_{seed}")


def run_one(arm: str, seed: int) -> None:
  from ganstyle_jax import evaluate, train  # pylint: disable=g-import-not-at-top

  wd = workdir(arm, seed)
  if os.path.exists(os.path.join(wd, "eval.json")):
    return
  config = runpy.run_path(os.path.join(HERE, f"{arm}.py"))["get_config"]()
  config.seed = seed
  if STEPS_OVERRIDE:
    config.total_steps = config.checkpoint_every_steps = config.sample_every_steps = STEPS_OVERRIDE
  t0 = time.time()
  train.train_and_evaluate(config, wd)
  train_s = time.time() - t0
  report = evaluate.evaluate_run(wd)
  report["train_wall_s"] = train_s
  with open(os.path.join(wd, "eval.json"), "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
  print(f"{arm} seed {seed}: {train_s:.0f} s, psnr {report['metrics']['psnr']:.2f}", flush=True)


def scalars(wd: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{tag: (steps, values)} from a run's TensorBoard events (clu writes tensor summaries)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  out: dict[str, list] = {}
  for path in sorted(glob.glob(os.path.join(wd, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        value = tf.make_ndarray(v.tensor)
        if value.ndim == 0:  # scalars; sample grids are image tensors
          out.setdefault(v.tag, []).append((event.step, float(value)))
  return {k: tuple(np.array(x) for x in zip(*sorted(v))) for k, v in out.items()}


def _mean_std(xs) -> str:
  return f"{np.mean(xs):.3f} ± {np.std(xs):.3f}"


def report(arms, seeds) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  evals = {
    a: [json.load(open(os.path.join(workdir(a, s), "eval.json"))) for s in seeds] for a in arms
  }
  rows = [
    "| arm | "
    + " | ".join(f"{m} {'↑' if m in HIGHER else '↓'}" for m in TABLE)
    + " | train s/run |",
    "|---" * (len(TABLE) + 2) + "|",
  ]
  summary = {}
  for a in arms:
    ms = [e["metrics"] for e in evals[a]]
    summary[a] = {m: [x[m] for x in ms] for m in TABLE}
    rows.append(
      f"| {LABELS[a]} | "
      + " | ".join(_mean_std(summary[a][m]) for m in TABLE)
      + f" | {np.mean([e['train_wall_s'] for e in evals[a]]):.0f} |"
    )
  ident = [e["metrics"] for a in arms for e in evals[a] if a != "cyclegan"]
  rows.append(
    "| identity (output = content photo) | "
    + " | ".join(
      _mean_std([x[f"{m}_identity"] for x in ident]) if f"{m}_identity" in ident[0] else "0"
      for m in TABLE
    )
    + " | — |"
  )
  with open(os.path.join(HERE, "results.md"), "w") as f:
    f.write("\n".join(rows) + "\n")
  with open(os.path.join(HERE, "results.json"), "w") as f:
    json.dump({"seeds": list(seeds), "per_seed": summary}, f, indent=2, sort_keys=True)

  os.makedirs(os.path.join(HERE, "figures"), exist_ok=True)
  curves = {a: [scalars(workdir(a, s)) for s in seeds] for a in arms}
  panels = [
    ("g/content", "G content loss (train)"),
    ("g/style", "G style loss (train)"),
    ("g/adv", "G adversarial loss (train)"),
    ("d/loss", "D loss (train)"),
    ("eval/psnr", "known-answer PSNR (dB, held-out)"),
    ("eval/swd", "SWD x1e3 (held-out)"),
  ]
  fig, axes = plt.subplots(2, 3, figsize=(15, 8))
  for ax, (tag, title) in zip(axes.flat, panels):
    for i, a in enumerate(arms):
      runs = [c[tag] for c in curves[a] if tag in c]
      if not runs:
        continue
      steps = runs[0][0]
      vals = np.stack([r[1][: len(steps)] for r in runs])
      color = f"C{i}"  # one colour per arm in every panel, whether or not it logs this tag
      ax.plot(steps, vals.mean(0), label=LABELS[a], color=color)
      ax.fill_between(steps, vals.min(0), vals.max(0), alpha=0.15, color=color)
    if tag == "eval/psnr":
      ax.axhline(
        np.mean([x["psnr_identity"] for x in ident]), color="k", ls="--", label="identity baseline"
      )
    ax.set_title(title)
    ax.set_xlabel("step")
  axes.flat[4].legend(fontsize=8)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, "figures", "curves.png"), dpi=90)

  fig, axes = plt.subplots(len(arms), 1, figsize=(8, 2.6 * len(arms)))
  for ax, a in zip(np.atleast_1d(axes), arms):
    grid = sorted(glob.glob(os.path.join(workdir(a, seeds[0]), "samples", "*.png")))[-1]
    ax.imshow(Image.open(grid))
    ax.set_title(f"{LABELS[a]} (seed {seeds[0]}, {os.path.basename(grid)})", fontsize=9)
    ax.axis("off")
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, "figures", "samples.png"), dpi=90)
  print("\n".join(rows))


def main():
  global RUNS, STEPS_OVERRIDE
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--arms", default=",".join(ARMS))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--report_only", action="store_true")
  parser.add_argument("--runs_dir", default=RUNS)
  parser.add_argument("--steps", type=int, default=0, help="override (smoke test only)")
  args = parser.parse_args()
  RUNS, STEPS_OVERRIDE = args.runs_dir, args.steps
  arms = args.arms.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  if not args.report_only:
    for seed in seeds:  # seed-major: every arm has a result early
      for arm in arms:
        run_one(arm, seed)
  report(arms, seeds)


if __name__ == "__main__":
  main()
