"""Real images through the untrained colour-attention generator (no weights, no training).

    python experiments/seed_objective/colour_real.py [--data=../shared/data] [--size=256]

Rows: three photos of DATA/content with a painting of DATA/style each. Columns: content |
style (resized) | Reinhard colour transfer | AdaINGenerator(transfer_kind='colour') as
initialised (its decoder's log-gain is 0, so each pixel is the soft nearest colour of the
style image's 16 x 16 key grid). Writes figures/colour_real_untrained.jpg beside this file.
"""

import argparse
import os

import jax
import jax.numpy as jnp
import numpy as np
from PIL import Image

from ganstyle_jax import baselines
from ganstyle_jax.models import generators
from ganstyle_jax.models import vgg as vgg_lib

HERE = os.path.dirname(os.path.abspath(__file__))
PAIRS = (("chicago", "mondrian"), ("flowers", "woman_with_hat_matisse"), ("newyork", "la_muse"))


def load(path: str, size: int) -> np.ndarray:
  im = Image.open(path).convert("RGB")
  im = im.resize((size, int(size * im.height / im.width) // 8 * 8))
  return np.asarray(im, np.float32)[None] / 127.5 - 1


def untrained_colour_generator(
  encoder_layer: str = "relu2_1", vgg_weights: str = "random", **options
):
  """(AdaINGenerator(transfer_kind='colour', **options), its variables as initialised): the
  decoder's log-gain is 0, so the output is ColourAttention's (darkened by `Outlines` as
  initialised with outlines=True), whatever the init seed."""
  g = generators.AdaINGenerator(encoder_layer=encoder_layer, transfer_kind="colour", **options)
  x = jnp.zeros((1, 64, 64, 3))
  trained = generators.trained_params(g.init(jax.random.key(0), x, x)["params"])
  return g, generators.assemble_variables(vgg_lib.load_params(vgg_weights), trained)


def main():
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument("--data", default=os.path.join(HERE, "..", "..", "..", "shared", "data"))
  parser.add_argument("--size", type=int, default=256)
  args = parser.parse_args()
  g, variables = untrained_colour_generator()
  rows = []
  for photo, painting in PAIRS:
    c = load(os.path.join(args.data, "content", f"{photo}.jpg"), args.size)
    s = load(os.path.join(args.data, "style", f"{painting}.jpg"), args.size)
    out = np.clip(np.asarray(g.apply(variables, c, s)), -1, 1)
    ct = np.clip(np.asarray(baselines.colour_transfer(c, s)), -1, 1)
    s_shown = np.asarray(jax.image.resize(s, (1, c.shape[1], c.shape[2], 3), "linear"))
    rows.append(np.concatenate([c[0], s_shown[0], ct[0], out[0]], 1))
  h = min(r.shape[0] for r in rows)
  grid = ((np.concatenate([r[:h] for r in rows], 0) + 1) * 127.5).clip(0, 255).astype(np.uint8)
  Image.fromarray(grid).save(os.path.join(HERE, "figures", "colour_real_untrained.jpg"), quality=88)


if __name__ == "__main__":
  main()
