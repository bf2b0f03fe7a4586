"""Where the decibels are on the multi-style benchmark: hand-made pickers scored like the arms.

Each row quantises the content photo by a nearest-colour pick from some set of colours (the
style image's 16 x 16 key grid, as the colour-attention generator reads it; all of its pixels;
or style k's true 8 colours, which no model is given), from the photo as it is or 3x3-blurred
as the painting function blurs it, softly (the generator's initial bandwidth 0.05) or hard, and
optionally with the true outlines (style k's darkening on the answer's edge pixels). Scored on
the study's 64 held-out pairs (unseen styles) against the known answer, beside the baselines.

  python experiments/seed_objective/oracles.py
"""

import numpy as np

from ganstyle_jax import metrics
from ganstyle_jax.data import synthetic

SIZE, NUM, STYLES = 64, 64, 16
BANDWIDTH = 0.05  # the colour-attention generator's initial softmax bandwidth, on [-1, 1] colours


def blur(x: np.ndarray) -> np.ndarray:
  """3x3 box blur with edge padding, as `synthetic.painting_regions` blurs."""
  h, w = x.shape[1:3]
  p = np.pad(x, ((0, 0), (1, 1), (1, 1), (0, 0)), mode="edge")
  return sum(p[:, i : i + h, j : j + w] for i in range(3) for j in range(3)) / 9.0


def pick(queries: np.ndarray, keys: np.ndarray, soft: bool) -> np.ndarray:
  """Per image: each query pixel's nearest key colour (hard) or the softmax mix of the keys at
  BANDWIDTH (soft; distances on [-1, 1] colours, as the generator measures them). queries
  [N, H, W, 3], keys [N, K, 3], RGB in [0, 1]."""
  out = []
  for q, k in zip(queries, keys):
    d = ((q[:, :, None, :] - k[None, None]) ** 2).sum(-1)
    if soft:
      w = np.exp(-4.0 * (d - d.min(-1, keepdims=True)) / (2 * BANDWIDTH**2))  # 4: [-1, 1]
      out.append((w / w.sum(-1, keepdims=True)) @ k)
    else:
      out.append(k[d.argmin(-1)])
  return np.stack(out)


def main():
  pairs = synthetic.heldout_pairs(NUM, SIZE, STYLES)
  content, style = (pairs["content"] + 1) / 2, (pairs["style"] + 1) / 2
  target = pairs["target"]
  palettes, darken = synthetic.style_tables(pairs["style_index"])
  _, edge = synthetic.painting_regions(content, palettes)
  psnr = lambda x01: float(np.mean(metrics.psnr(np.float32(x01 * 2 - 1), target)))
  grid = np.arange(16) * SIZE // 16
  keysets = {
    "style image, 16x16 key grid": style[:, grid][:, :, grid].reshape(NUM, -1, 3),
    "style image, all pixels": style.reshape(NUM, -1, 3),
    "style k's true 8 colours": palettes,
  }
  print(f"identity {psnr(content):.2f} dB; edge pixels {edge.mean():.2%} of the answer")
  print("| keys | query | pick | PSNR dB | + true outlines |")
  print("|---|---|---|---|---|")
  for name, keys in keysets.items():
    for blurred in (False, True):
      for soft in (True, False):
        out = pick(blur(content) if blurred else content, keys, soft)
        outlined = np.where(edge, darken[:, None, None, None] * out, out)
        print(
          f"| {name} | {'3x3 blur' if blurred else 'photo'} | {'soft' if soft else 'hard'} | "
          f"{psnr(out):.2f} | {psnr(outlined):.2f} |"
        )


if __name__ == "__main__":
  main()
