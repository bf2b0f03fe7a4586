"""Temporal consistency: loss.w_temporal in training, and --consistency at inference.

    python experiments/video/run.py [--steps=200] [--w_temporal=100]

1. Trains the demo recipe (configs/demo.py: adain_gan, 64 px, random VGG, hinge) for --steps
   steps twice, without and with loss.w_temporal (runs/base, runs/temporal; skipped when their
   eval.json exists), and evaluates each as `python -m ganstyle_jax.evaluate --num_images=16`
   would: the temporal_error (known-flow clips) and temporal_stability (static scene + noise)
   metrics beside the known-answer PSNR.
2. Stylizes a synthetic 12-frame clip (a static scene in which only a small bright square
   moves) with each model, per-frame (none), global and ema statistics (video.stylize_frames,
   the CLI's path), and measures the mean |change| between consecutive output frames on the
   static background (rows at least 12 px from the square's).
Writes results.json, results.md and figures/strip.png (rows: input, then each model x mode,
frames 1, 4, 7, 10; then the change from the previous frame x20 for three of them) and
figures/clip.gif beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import runpy
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
RUNS = os.path.join(HERE, "runs")
ARMS = ("base", "temporal")
MODES = ("none", "global", "ema")
PATCH_ROWS = (20, 30)  # the moving square's rows in the clip
MARGIN = 12  # background: rows this far from the square


def config_for(arm: str, steps: int, w_temporal: float):
  config = runpy.run_path(os.path.join(REPO, "configs", "demo.py"))["get_config"]()
  config.total_steps = steps
  config.checkpoint_every_steps = steps
  config.sample_every_steps = steps
  config.eval_every_steps = 0
  config.loss.w_temporal = w_temporal if arm == "temporal" else 0.0
  return config


def train_arm(arm: str, steps: int, w_temporal: float) -> dict:
  from ganstyle_jax import evaluate, train  # pylint: disable=g-import-not-at-top

  wd = os.path.join(RUNS, arm)
  path = os.path.join(wd, "eval.json")
  if os.path.exists(path):
    with open(path) as f:
      return json.load(f)
  t0, c0 = time.time(), time.process_time()
  train.train_and_evaluate(config_for(arm, steps, w_temporal), wd)
  report = evaluate.evaluate_run(wd, num_images=16)
  report["train_wall_s"], report["train_cpu_s"] = time.time() - t0, time.process_time() - c0
  with open(path, "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
  return report


def clip(n: int = 12, size: int = 64) -> list[np.ndarray]:
  """A static held-out scene; only a bright 10 x 10 square moves, 4 px a frame."""
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  base = synthetic.to_uint8(synthetic.render_scene(synthetic.scene_seed("photo", "test", 0), size))
  frames = []
  for i in range(n):
    f = base.copy()
    f[PATCH_ROWS[0] : PATCH_ROWS[1], 4 + 4 * i : 14 + 4 * i] = (250, 240, 40)
    frames.append(f)
  return frames


def background_change(frames) -> float:
  keep = np.ones(frames[0].shape[0], bool)
  keep[max(0, PATCH_ROWS[0] - MARGIN) : PATCH_ROWS[1] + MARGIN] = False
  x = np.asarray(frames, np.float32)[:, keep]
  return float(np.abs(np.diff(x, axis=0)).mean())


def video_study() -> tuple[dict, dict]:
  import ganstyle_jax  # pylint: disable=g-import-not-at-top
  from ganstyle_jax import video  # pylint: disable=g-import-not-at-top
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  frames = clip()
  style_scene = synthetic.render_scene(synthetic.scene_seed("painting", "test", 3), 64)
  style = synthetic.to_uint8(synthetic.painting(style_scene, 1003))
  outputs, change = {"input": frames}, {"input": background_change(frames)}
  for arm in ARMS:
    stylizer = ganstyle_jax.load(os.path.join(RUNS, arm))
    for mode in MODES:
      out = list(video.stylize_frames(stylizer, frames, style, consistency=mode, batch_frames=4))
      outputs[f"{arm}/{mode}"] = out
      change[f"{arm}/{mode}"] = background_change(out)
  return outputs, change


def figures(outputs: dict) -> None:
  from PIL import Image, ImageDraw  # pylint: disable=g-import-not-at-top

  os.makedirs(os.path.join(HERE, "figures"), exist_ok=True)
  picks, scale, label_w = (0, 3, 6, 9), 2, 170
  rows = []
  diffs = {  # |frame t - frame t-1|, x20: the flicker, visible
    f"{k} |change| x20": [np.zeros_like(outputs[k][0])]
    + [
      np.clip(np.abs(b.astype(np.int16) - a.astype(np.int16)) * 20, 0, 255).astype(np.uint8)
      for a, b in zip(outputs[k][:-1], outputs[k][1:])
    ]
    for k in ("base/none", "base/global", "temporal/none")
  }
  for name, frames in {**outputs, **diffs}.items():
    row = np.concatenate(
      [np.pad(frames[i], ((2, 2), (2, 2), (0, 0)), constant_values=255) for i in picks], 1
    )
    img = Image.fromarray(row).resize((row.shape[1] * scale, row.shape[0] * scale), Image.NEAREST)
    canvas = Image.new("RGB", (label_w + img.width, img.height), "white")
    canvas.paste(img, (label_w, 0))
    ImageDraw.Draw(canvas).text((4, img.height // 2 - 6), name, fill="black")
    rows.append(np.asarray(canvas))
  Image.fromarray(np.concatenate(rows, 0)).save(os.path.join(HERE, "figures", "strip.png"))
  gif = [  # 1x: the columns of the strip's first rows, side by side
    Image.fromarray(np.concatenate([outputs[k][t] for k in outputs], 1))
    for t in range(len(outputs["input"]))
  ]
  gif[0].save(
    os.path.join(HERE, "figures", "clip.gif"),
    save_all=True,
    append_images=gif[1:],
    duration=150,
    loop=0,
  )


def main() -> None:
  parser = argparse.ArgumentParser()
  parser.add_argument("--steps", type=int, default=200)
  parser.add_argument("--w_temporal", type=float, default=100.0)
  args = parser.parse_args()
  c0 = time.process_time()
  evals = {arm: train_arm(arm, args.steps, args.w_temporal) for arm in ARMS}
  outputs, change = video_study()
  figures(outputs)
  keys = ("temporal_error", "temporal_stability", "temporal_stability_identity", "psnr", "ssim")
  results = {
    "steps": args.steps,
    "w_temporal": args.w_temporal,
    "metrics": {arm: {k: evals[arm]["metrics"][k] for k in keys} for arm in ARMS},
    "train_cpu_s": {arm: evals[arm].get("train_cpu_s") for arm in ARMS},
    "background_change_grey_levels": change,
    "study_cpu_s_this_call": time.process_time() - c0,
  }
  with open(os.path.join(HERE, "results.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  lines = [
    "| model | temporal_error ↓ | temporal_stability ↓ (identity) | PSNR ↑ | SSIM ↑ |",
    "|---|---|---|---|---|",
  ]
  for arm in ARMS:
    m = results["metrics"][arm]
    lines.append(
      f"| {arm} | {m['temporal_error']:.5f} | {m['temporal_stability']:.5f} "
      f"({m['temporal_stability_identity']:.5f}) | {m['psnr']:.2f} | {m['ssim']:.3f} |"
    )
  lines += ["", "| clip | background change (grey levels / frame) ↓ |", "|---|---|"]
  lines += [f"| {k} | {v:.3f} |" for k, v in change.items()]
  with open(os.path.join(HERE, "results.md"), "w") as f:
    f.write("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  main()
