"""Real images, no pretrained weights: the demo recipe trained on real photo and painting crops.

    python experiments/seed_objective/gallery.py [--data=../shared/data] [--steps=600] \
        [--size=384] [--gatys_steps=200] [--photos=3]

Trains configs/demo.py's recipe (frozen random VGG19) on random 64 px crops of the photos in
DATA/content and the paintings in DATA/style (loaded at 128 px on the short side; D judges
the paintings alone, as a folder holds no pairs of paintings in one style), then
stylizes the first PHOTOS photos at SIZE px (long side) with each of a few paintings, next to
Gatys et al.'s optimisation with the same random VGG features (GATYS_STEPS Adam steps) and
Reinhard colour transfer.
Writes figures/gallery.jpg and gallery.json (timings) beside this file.
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


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default=os.path.join(REPO, "..", "shared", "data"))
  parser.add_argument("--steps", type=int, default=600)
  parser.add_argument("--size", type=int, default=384)
  parser.add_argument("--gatys_steps", type=int, default=200)
  parser.add_argument("--photos", type=int, default=3)
  parser.add_argument("--workdir", default=os.path.join(HERE, "runs", "gallery"))
  parser.add_argument("--styles", default="la_muse.jpg,mondrian.jpg,woman_with_hat_matisse.jpg")
  args = parser.parse_args()

  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  import matplotlib  # pylint: disable=g-import-not-at-top

  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=g-import-not-at-top

  import ganstyle_jax  # pylint: disable=g-import-not-at-top
  from ganstyle_jax import baselines, gatys, train  # pylint: disable=g-import-not-at-top
  from ganstyle_jax.images import limit_size, to_float, to_uint8  # pylint: disable=g-import-not-at-top
  from ganstyle_jax.models import vgg as vgg_lib  # pylint: disable=g-import-not-at-top
  from ganstyle_jax.stylize import read_image  # pylint: disable=g-import-not-at-top

  data = os.path.abspath(args.data)
  config = runpy.run_path(os.path.join(REPO, "configs", "demo.py"))["get_config"]()
  config.data.content = f"folder:{data}/content"
  config.data.style = config.data.real = f"folder:{data}/style"
  config.loss.adv_condition = "none"  # a folder of paintings has no same-style pairs to judge
  config.data.synthetic_styles = 1
  config.data.load_size = 128
  config.total_steps = args.steps
  config.eval_every_steps = 0
  config.num_eval_images = config.num_sample_images = 4
  timings = {}
  t = time.time()
  if not os.path.exists(os.path.join(args.workdir, "checkpoints")):
    train.train_and_evaluate(config, args.workdir)
  timings["train_s"] = time.time() - t
  stylizer = ganstyle_jax.load(args.workdir)
  vgg = vgg_lib.load_params("random")

  photos = sorted(os.listdir(os.path.join(data, "content")))[: args.photos]
  styles = args.styles.split(",")
  columns = ["photo", "style", "ours (demo recipe)", "Gatys, random VGG", "colour transfer"]
  fig, axes = plt.subplots(
    len(photos) * len(styles),
    len(columns),
    figsize=(3 * len(columns), 2.4 * len(photos) * len(styles)),
  )
  timings.update(ours_s=0.0, gatys_s=0.0)
  for i, (p, s) in enumerate((p, s) for p in photos for s in styles):
    c = limit_size(read_image(os.path.join(data, "content", p)), args.size)
    st = limit_size(read_image(os.path.join(data, "style", s)), args.size)
    t = time.time()
    ours = stylizer.stylize(c, st)
    timings["ours_s"] += time.time() - t
    t = time.time()
    opt = gatys.optimize(c, st, vgg, steps=args.gatys_steps, lr=0.02)
    timings["gatys_s"] += time.time() - t
    ct = to_uint8(baselines.colour_transfer(jnp.asarray(to_float(c)), jnp.asarray(to_float(st)))[0])
    for ax, img, title in zip(axes[i], (c, st, ours, opt, ct), columns):
      ax.imshow(np.asarray(img))
      ax.set_title(
        f"{title}" + (f": {p}" if title == "photo" else f": {s}" if title == "style" else ""),
        fontsize=8,
      )
      ax.axis("off")
  fig.tight_layout()
  os.makedirs(os.path.join(HERE, "figures"), exist_ok=True)
  fig.savefig(
    os.path.join(HERE, "figures", "gallery.jpg"),
    dpi=70,
    pil_kwargs={"quality": 82, "optimize": True},
  )
  with open(os.path.join(HERE, "gallery.json"), "w") as f:
    json.dump(
      {
        "steps": args.steps,
        "size": args.size,
        "gatys_steps": args.gatys_steps,
        "photos": photos,
        "styles": styles,
        **timings,
      },
      f,
      indent=2,
    )
  print(json.dumps(timings))


if __name__ == "__main__":
  main()
