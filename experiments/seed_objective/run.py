"""Runs the seed-objective study: every arm x seed, then results.json, results.md and figures.

    python experiments/seed_objective/run.py [--arms=a,b] [--seeds=0,1,2] [--report_only]

Each (arm, seed) trains in runs/ARM/seed_S exactly as
`python -m ganstyle_jax.main --config=experiments/seed_objective/config.py:ARM
--workdir=runs/ARM/seed_S --config.seed=S` would (same function, one process), then is
evaluated as `python -m ganstyle_jax.evaluate --workdir=runs/ARM/seed_S` would. A finished run
(its eval.json exists) is skipped, so an interrupted study resumes. CPU time is the process's
user + system time over the training, on this machine's cores. Needs matplotlib
(`pip install -e '.[experiments]'`).
"""

from __future__ import annotations

import argparse
import copy
import functools
import glob
import json
import os
import resource
import runpy
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
RUNS = os.path.join(HERE, "runs")
CONFIG = runpy.run_path(os.path.join(HERE, "config.py"))
BENCHMARKS = CONFIG["BENCHMARKS"]
STYLES = CONFIG["STYLES"]


def workdir(arm: str, seed: int) -> str:
  return os.path.join(RUNS, arm, f"seed_{seed}")


def done(arm: str, seeds) -> list[int]:
  """The seeds of `arm` whose run has finished (its eval.json exists)."""
  return [s for s in seeds if os.path.exists(os.path.join(workdir(arm, s), "eval.json"))]


def cpu_seconds() -> float:
  r = resource.getrusage(resource.RUSAGE_SELF)
  return r.ru_utime + r.ru_stime


def run_one(arm: str, seed: int) -> None:
  from ganstyle_jax import evaluate, train  # pylint: disable=g-import-not-at-top

  wd = workdir(arm, seed)
  if os.path.exists(os.path.join(wd, "eval.json")):
    return
  config = CONFIG["get_config"](arm)
  config.seed = seed
  t0, c0 = time.time(), cpu_seconds()
  train.train_and_evaluate(config, wd)
  train_s, cpu_s = time.time() - t0, cpu_seconds() - c0
  report = evaluate.evaluate_run(wd)
  report.update(
    train_wall_s=train_s,
    train_cpu_s=cpu_s,
    total_steps=config.total_steps,
    adversarial=config.loss.w_adv > 0,
  )
  with open(os.path.join(wd, "eval.json"), "w") as f:
    json.dump(report, f, indent=2, sort_keys=True)
  print(
    f"{arm} seed {seed}: {train_s:.0f} s wall, {cpu_s / 60:.1f} CPU-min, "
    f"psnr {report['metrics']['psnr']:.2f}",
    flush=True,
  )


@functools.cache
def heldout_edges(num_images: int) -> tuple[np.ndarray, np.ndarray]:
  """The first num_images held-out photos [N, 64, 64, 3] in [-1, 1] and their known answer's
  edge pixels (bool [N, 64, 64, 1]), computed once for every arm and seed."""
  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  content = np.asarray(synthetic.heldout_pairs(num_images, 64, STYLES)["content"])
  return content, np.asarray(synthetic.painting_regions((content + 1) / 2)[1])


def outline_darkening(wd: str | None, num_images: int) -> dict[str, float]:
  """How a run's trained outline module (wd None: as initialised) darkens the held-out
  photos: the mean factor exp(log-gain) on the known answer's edge pixels ("edges"; the
  answer's own factor is 0.1-0.4) and on all other pixels ("elsewhere"; 1 is untouched)."""
  import jax  # pylint: disable=g-import-not-at-top

  import ganstyle_jax  # pylint: disable=g-import-not-at-top
  from ganstyle_jax.models import generators  # pylint: disable=g-import-not-at-top

  if wd is None:
    params = generators.Outlines().init(jax.random.key(0), np.zeros((1, 8, 8, 3)))["params"]
  else:
    params = ganstyle_jax.load(wd).g_params["outline"]
  content, edge = heldout_edges(num_images)
  factor = np.exp(np.asarray(generators.Outlines().apply({"params": params}, content)))
  return {"edges": float(factor[edge].mean()), "elsewhere": float(factor[~edge].mean())}


def scalars(wd: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
  """{tag: (steps, values)} from a run's TensorBoard events (clu writes tensor summaries)."""
  import tensorflow as tf  # pylint: disable=g-import-not-at-top

  out: dict[str, list] = {}
  for path in sorted(glob.glob(os.path.join(wd, "events.out.tfevents.*"))):
    for event in tf.compat.v1.train.summary_iterator(path):
      for v in event.summary.value:
        value = tf.make_ndarray(v.tensor)
        if value.ndim == 0:
          out.setdefault(v.tag, []).append((event.step, float(value)))
  return {k: tuple(np.array(x) for x in zip(*sorted(v))) for k, v in out.items()}


def summarise(arms, seeds) -> dict:
  """results.json: per benchmark, the baselines and every arm's mean and spread."""
  results = {}
  for bench, bench_arms in BENCHMARKS.items():
    evals = {
      a: [json.load(open(os.path.join(workdir(a, s), "eval.json"))) for s in done(a, seeds)]
      for a in bench_arms
      if a in arms and done(a, seeds)
    }
    if not evals:
      continue
    first_eval = next(iter(evals.values()))[0]
    first = first_eval["metrics"]
    baselines = {
      name: {"psnr": first[f"psnr_{name}"], "ssim": first[f"ssim_{name}"]}
      for name in ("identity", "colour_transfer", "style_blind")
      if np.isfinite(first.get(f"psnr_{name}", np.inf))  # style_blind is the single-style answer
    }
    rows = []
    for a, es in evals.items():
      psnr = [e["metrics"]["psnr"] for e in es]
      ssim = [e["metrics"]["ssim"] for e in es]
      rows.append(
        {
          "name": a,
          "label": CONFIG["LABELS"][a],
          "adversarial": es[0]["adversarial"],
          "seeds": done(a, seeds),
          "psnr": psnr,
          "ssim": ssim,
          "psnr_mean": float(np.mean(psnr)),
          "psnr_std": float(np.std(psnr)),
          "ssim_mean": float(np.mean(ssim)),
          "ssim_std": float(np.std(ssim)),
          "cpu_minutes": float(np.mean([e["train_cpu_s"] for e in es]) / 60),
          "wall_minutes": float(np.mean([e["train_wall_s"] for e in es]) / 60),
          "steps": es[0]["total_steps"],
        }
      )
      if CONFIG["get_config"](a).model.generator.get("outlines", False):
        per_seed = [
          outline_darkening(workdir(a, s), first_eval["num_images"]) for s in rows[-1]["seeds"]
        ]
        rows[-1]["outline_darkening"] = {
          k: float(np.mean([d[k] for d in per_seed])) for k in ("edges", "elsewhere")
        }
    results[bench] = {"num_images": first_eval["num_images"], "baselines": baselines, "arms": rows}
  return results


def untrained_colour_reference(num_images: int, **options) -> dict[str, float]:
  """The colour-attention generator as initialised (no training; the decoder's log-gain is 0,
  so every output pixel is a soft nearest-colour pick from the style image, seed-independent;
  options: outlines (darkened to half on the photo's sharp luminance edges), smooth_query (the
  pick's query smoothed)), scored like the arms on the first num_images held-out pairs: what
  the architecture gives before any loss acts."""
  import jax  # pylint: disable=g-import-not-at-top

  from ganstyle_jax.data import synthetic  # pylint: disable=g-import-not-at-top

  config = CONFIG["get_config"]("colour_no_adv")
  pairs = synthetic.heldout_pairs(num_images, 64, config.data.synthetic_styles)
  make = runpy.run_path(os.path.join(HERE, "colour_real.py"))["untrained_colour_generator"]
  g, variables = make(config.model.generator.encoder_layer, config.model.vgg.weights, **options)
  out = jax.numpy.clip(jax.jit(g.apply)(variables, pairs["content"], pairs["style"]), -1, 1)
  m = synthetic.known_answer_metrics(pairs["content"], out, pairs["target"], pairs["style"])
  return {"psnr": m["psnr"], "ssim": m["ssim"]}


def merge_previous(results: dict, path: str) -> dict:
  """Arms of the previous results.json whose runs are not on this machine (runs/ is not kept
  in git) are carried over unchanged, marked "carried_over": true; their figures are not
  redrawn."""
  if not os.path.exists(path):
    return results
  with open(path) as f:
    previous = json.load(f)
  for bench, old in previous.items():
    new = results.setdefault(bench, {**old, "arms": []})
    have = {a["name"] for a in new["arms"]}
    carried = [
      {**a, "label": CONFIG["LABELS"][a["name"]], "carried_over": True}
      for a in old["arms"]
      if a["name"] not in have and a["name"] in BENCHMARKS.get(bench, ())
    ]
    order = {name: i for i, name in enumerate(BENCHMARKS.get(bench, ()))}
    new["arms"] = sorted(new["arms"] + carried, key=lambda a: order[a["name"]])
  return results


def report(arms, seeds) -> None:
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top
  from PIL import Image  # pylint: disable=g-import-not-at-top

  fresh = summarise(arms, seeds)  # the arms whose runs are here: figures
  results = merge_previous(copy.deepcopy(fresh), os.path.join(HERE, "results.json"))
  if "multi_style" in results:
    r = results["multi_style"]
    r["references"] = {
      "colour_attention_untrained": untrained_colour_reference(r["num_images"]),
      "colour_attention_outlines_untrained": untrained_colour_reference(
        r["num_images"], outlines=True
      ),
      "colour_attention_smooth_outlines_untrained": untrained_colour_reference(
        r["num_images"], outlines=True, smooth_query=True
      ),
    }
  with open(os.path.join(HERE, "results.json"), "w") as f:
    json.dump(results, f, indent=2, sort_keys=True)
  lines = []
  for bench, r in results.items():
    lines += [
      f"### {bench}",
      "",
      "| arm | adversarial | PSNR dB (mean ± std) | SSIM | CPU-min | seeds: PSNR |",
      "|---|---|---|---|---|---|",
    ]
    for a in r["arms"]:
      lines.append(
        f"| {a['label']}{' (carried over)' if a.get('carried_over') else ''} | "
        f"{'yes' if a['adversarial'] else 'no'} | "
        f"{a['psnr_mean']:.2f} ± {a['psnr_std']:.2f} | {a['ssim_mean']:.3f} | "
        f"{a['cpu_minutes']:.1f} | "
        + ", ".join(f"{s}: {p:.2f}" for s, p in zip(a["seeds"], a["psnr"]))
        + " |"
      )
    for name, b in r.get("references", {}).items():
      lines.append(f"| reference: {name} | — | {b['psnr']:.2f} | {b['ssim']:.3f} | 0 | — |")
    for name, b in r["baselines"].items():
      lines.append(f"| baseline: {name} | — | {b['psnr']:.2f} | {b['ssim']:.3f} | — | — |")
    outlined = [a for a in r["arms"] if "outline_darkening" in a]
    if outlined:
      lines += [
        "",
        "Outline module after training (mean factor on the held-out photos; answer: 0.1-0.4 "
        "on edges, 1 elsewhere; as initialised: "
        + "{edges:.2f} / {elsewhere:.3f}".format(**outline_darkening(None, r["num_images"]))
        + "):",
        "",
        "| arm | on the answer's edges | elsewhere |",
        "|---|---|---|",
      ]
      for a in outlined:
        d = a["outline_darkening"]
        lines.append(f"| {a['label']} | {d['edges']:.2f} | {d['elsewhere']:.3f} |")
    lines.append("")
  with open(os.path.join(HERE, "results.md"), "w") as f:
    f.write("\n".join(lines))
  print("\n".join(lines))

  os.makedirs(os.path.join(HERE, "figures"), exist_ok=True)
  fig, axes = plt.subplots(1, len(fresh), figsize=(7 * len(fresh), 4.5), squeeze=False)
  for ax, (bench, r) in zip(axes[0], fresh.items()):
    for i, a in enumerate(r["arms"]):
      runs = [scalars(workdir(a["name"], s)).get("eval/psnr") for s in a["seeds"]]
      runs = [x for x in runs if x is not None]
      steps = runs[0][0]
      vals = np.stack([x[1][: len(steps)] for x in runs])
      minutes = steps / a["steps"] * a["cpu_minutes"]  # CPU time grows linearly with steps
      ax.plot(minutes, vals.mean(0), color=f"C{i}", label=a["label"])
      ax.fill_between(minutes, vals.min(0), vals.max(0), color=f"C{i}", alpha=0.15)
    for j, (name, b) in enumerate(r["baselines"].items()):
      ax.axhline(b["psnr"], color="k", ls=("--", ":", "-.")[j], label=f"baseline: {name}")
    for k, (name, b) in enumerate(results[bench].get("references", {}).items()):
      ax.axhline(
        b["psnr"], color="grey", lw=1, ls=("-", "--", ":")[k % 3], label=f"reference: {name}"
      )
    ax.set(
      title=f"{bench}: known-answer PSNR on held-out images",
      xlabel="CPU-minutes",
      ylabel="PSNR (dB)",
    )
    ax.legend(fontsize=7)
  fig.tight_layout()
  fig.savefig(os.path.join(HERE, "figures", "curves.png"), dpi=90)

  for bench, r in fresh.items():
    fig, axes = plt.subplots(len(r["arms"]), 1, figsize=(7, 2.6 * len(r["arms"])), squeeze=False)
    for ax, a in zip(axes[:, 0], r["arms"]):
      seed = a["seeds"][0]
      grid = sorted(glob.glob(os.path.join(workdir(a["name"], seed), "samples", "*.png")))[-1]
      ax.imshow(Image.open(grid))
      ax.set_title(f"{a['label']} (seed {seed}, {os.path.basename(grid)})", fontsize=9)
      ax.axis("off")
    fig.tight_layout()
    fig.savefig(os.path.join(HERE, "figures", f"samples_{bench}.png"), dpi=90)


def main():
  global RUNS
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  every = [a for arms in BENCHMARKS.values() for a in arms]
  parser.add_argument("--arms", default=",".join(every))
  parser.add_argument("--seeds", default="0,1,2")
  parser.add_argument("--report_only", action="store_true")
  parser.add_argument("--runs_dir", default=RUNS)
  args = parser.parse_args()
  RUNS = args.runs_dir
  arms = args.arms.split(",")
  seeds = [int(s) for s in args.seeds.split(",")]
  if not args.report_only:
    for seed in seeds:  # seed-major: every arm has a result early
      for arm in arms:
        run_one(arm, seed)
  report(arms, seeds)


if __name__ == "__main__":
  main()
