"""The web app: stylize images with a trained checkpoint in the browser (Gradio).

  pip install -e '.[app]'
  python -m ganstyle_jax.app --workdir=DIR [--host=127.0.0.1] [--port=7860]   # or: ganstyle-app

adain_gan checkpoints: a content image, one or two style images, the mixing weight of the two
styles (AdaIN statistics only: an attention or colour generator takes one style image, and the
page shows one), alpha, preserve colour and a size cap; cyclegan / pix2pix checkpoints: a
content image and the direction. The result comes with a download button and the time it took.

- One inference path: the page calls `Stylizer.stylize` (stylize.py), like the CLI.
- One compilation per size bucket: content and style images are capped at the max size and
  then reflect-padded to a multiple of BUCKET px (and of the network's own stride), and the
  output cropped back, so other sizes within a bucket and moving a slider reuse the compiled
  networks. (AdaIN's content and style statistics then include the reflected border, as they
  already include the stylize CLI's padding to the network stride.)
- Uploads are read by the project's one image decoder (data/decode.py); a file that is not an
  image, is too large (bytes or pixels) or is corrupt is reported in the page's status line,
  never with a traceback.
- Examples: the content (and style) images of the run's newest sample grid
  (workdir/samples/step_*.png), or none; nothing else is shipped with the app.
- Local only: binds 127.0.0.1 unless --host says otherwise; no share link, Gradio's analytics
  and version check off, fonts served by the app itself, so the page and the server send
  nothing to the network.
"""

from __future__ import annotations

import glob
import math
import os
import tempfile
import time
from typing import Any

import numpy as np
from PIL import Image

from ganstyle_jax import paths
from ganstyle_jax.data.decode import BadImageError, decode
from ganstyle_jax.errors import UserError, run_cli
from ganstyle_jax.images import grid_cells, limit_size

BUCKET = 64  # px: sizes are padded up to a multiple of this (one compilation per bucket)
MAX_UPLOAD_MB = 25  # larger uploads are refused (by Gradio's upload and by `read_upload`)
MAX_PIXELS = 4096 * 4096  # larger images are refused before they are decoded
MAX_SIZES = (64, 2048, 512)  # the max-size slider: minimum, maximum, default (px, long side)
IMAGE_HEIGHT = 240  # px of the image boxes on the page
CSS = ".fit img { width: 100%; height: 100%; object-fit: contain; }"  # small images fill them


def bucket_multiple(stylizer) -> int:
  """The padding multiple: BUCKET px and the network's own stride."""
  return math.lcm(BUCKET, stylizer.multiple)


def pad_to_bucket(img: np.ndarray, multiple: int) -> np.ndarray:
  """uint8 HWC reflect-padded on the bottom and right to multiples of `multiple`."""
  h, w = img.shape[:2]
  ph, pw = (-h) % multiple, (-w) % multiple
  mode = "reflect" if ph < h and pw < w else "edge"
  return np.pad(img, ((0, ph), (0, pw), (0, 0)), mode=mode)


def read_upload(
  payload: Any, label: str, max_pixels: int = MAX_PIXELS, max_bytes: int = MAX_UPLOAD_MB << 20
) -> np.ndarray | None:
  """uint8 HWC RGB of an uploaded image, None when nothing was uploaded.

  Args:
    payload: what Gradio hands over without preprocessing (a dict with 'path' and
      'orig_name'), or a file path.
    label: the input's name for messages ('content image', 'style image 1').
  Raises:
    UserError: one line naming the input and the file: not an image, too large, corrupt.
  """
  if payload is None:
    return None
  if isinstance(payload, dict):
    path, name = payload.get("path"), payload.get("orig_name") or payload.get("path")
  else:
    path = name = str(payload)
  if not path:
    return None
  name = os.path.basename(str(name))
  size = os.path.getsize(path) if os.path.exists(path) else 0
  if size > max_bytes:
    raise UserError(
      f"{label} {name!r} is too large: {size / 2**20:.1f} MB, the limit is "
      f"{max_bytes / 2**20:.0f} MB"
    )
  try:
    return decode(path, max_pixels=max_pixels)
  except BadImageError as e:
    raise UserError(f"{label} {name!r}: cannot read the image: {e}") from None


def stylize_request(
  stylizer,
  content: Any,
  style_1: Any = None,
  style_2: Any = None,
  style_1_weight: float = 0.5,
  alpha: float = 1.0,
  preserve_color: bool = False,
  max_size: int = MAX_SIZES[2],
  direction: str = "AtoB",
  *,
  max_pixels: int = MAX_PIXELS,
  max_bytes: int = MAX_UPLOAD_MB << 20,
) -> tuple[np.ndarray | None, str]:
  """One press of the Stylize button: (the result, uint8 HWC, or None; the status line).

  Inputs as `read_upload` takes them; style_2 mixes with style_1 by style_1_weight (adain_gan);
  direction: G(x) families. Every UserError becomes the status line's error message.
  """
  t = time.perf_counter()
  try:
    c = read_upload(content, "content image", max_pixels, max_bytes)
    if c is None:
      raise UserError("upload a content image")
    c = limit_size(c, int(max_size))
    h, w = c.shape[:2]
    m = bucket_multiple(stylizer)
    kwargs: dict[str, Any] = {"preserve_color": bool(preserve_color)}
    if stylizer.family.style_conditioned:
      styles = [
        limit_size(s, int(max_size))
        for s in (
          read_upload(style_1, "style image 1", max_pixels, max_bytes),
          read_upload(style_2, "style image 2", max_pixels, max_bytes),
        )
        if s is not None
      ]
      if not styles:
        raise UserError("upload a style image")
      kwargs["style"] = [pad_to_bucket(s, m) for s in styles]
      if len(styles) == 2:
        wt = float(style_1_weight)
        kwargs["style_weights"] = [wt, 1.0 - wt]
      kwargs["alpha"] = float(alpha)
    else:
      kwargs["direction"] = direction
    before = stylizer.compiled_count()
    out = stylizer.stylize(pad_to_bucket(c, m), **kwargs)[:h, :w]
  except UserError as e:
    return None, f"**Error:** {e}"
  except Exception as e:  # pylint: disable=broad-except
    from absl import logging  # pylint: disable=g-import-not-at-top

    logging.exception("stylize failed")  # the traceback goes to the server's console only
    return None, f"**Error:** {type(e).__name__}: {e}"
  seconds = time.perf_counter() - t
  note = ", compiled for this size" if stylizer.compiled_count() > before else ""
  bucket = f"{-(-w // m) * m}x{-(-h // m) * m}"
  return out, f"Stylized {w}x{h} px in {seconds:.2f} s (size bucket {bucket}{note})."


def sample_examples(workdir: str, stylizer, out_dir: str, n: int = 4) -> list[list[str]]:
  """Example inputs cut from the run's newest sample grid: rows [content, style] (adain_gan)
  or [content], written as PNGs to out_dir; [] when the run has no sample grid."""
  grids = sorted(glob.glob(os.path.join(str(workdir), "samples", "step_*.png")))
  if not grids or not paths.is_local(workdir):
    return []
  try:
    grid = np.asarray(Image.open(grids[-1]).convert("RGB"))
    rows = grid_cells(grid, stylizer.config.data.image_size)
  except (OSError, ValueError):
    return []
  columns = 2 if stylizer.family.style_conditioned else 1
  examples = []
  for i, row in enumerate(rows[:n]):
    files = []
    for j, what in enumerate(("content", "style")[:columns]):
      files.append(os.path.join(out_dir, f"{what}_{i}.png"))
      Image.fromarray(row[j]).save(files[-1])
    examples.append(files)
  return examples


def build_app(
  stylizer,
  workdir: str,
  *,
  max_pixels: int = MAX_PIXELS,
  max_bytes: int = MAX_UPLOAD_MB << 20,
):
  """The Gradio Blocks of the app for `stylizer` (its event: api_name 'stylize').

  Returns:
    (blocks, examples_dir): launch the blocks with allowed_paths=[examples_dir].
  """
  os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
  os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
  import gradio as gr  # pylint: disable=g-import-not-at-top

  examples_dir = tempfile.mkdtemp(prefix="ganstyle_app_")
  examples = sample_examples(workdir, stylizer, examples_dir)
  styled = stylizer.family.style_conditioned
  mixes = styled and not stylizer.attention  # two styles and their weight: AdaIN only
  title = f"ganstyle_jax: {stylizer.name}, step {stylizer.step}"

  def run(content, style_1, style_2, weight, alpha, preserve, max_size, direction):
    return stylize_request(
      stylizer,
      content,
      style_1,
      style_2,
      weight,
      alpha,
      preserve,
      max_size,
      direction,
      max_pixels=max_pixels,
      max_bytes=max_bytes,
    )

  upload = dict(
    type="filepath", sources=["upload", "clipboard"], height=IMAGE_HEIGHT, elem_classes=["fit"]
  )
  with gr.Blocks(title=title, analytics_enabled=False) as blocks:
    gr.Markdown(f"### {title} &nbsp; `{workdir}`")
    with gr.Row():
      content = gr.Image(label="Content", elem_id="content", **upload)
      style_1 = gr.Image(label="Style 1", elem_id="style_1", visible=styled, **upload)
      style_2 = gr.Image(label="Style 2 (optional)", elem_id="style_2", visible=mixes, **upload)
    with gr.Row():
      with gr.Column():
        weight = gr.Slider(
          0, 1, 0.5, step=0.05, label="Weight of style 1", elem_id="weight", visible=mixes
        )
        alpha = gr.Slider(
          0, 1, 1.0, step=0.05, label="Alpha (0: content, 1: full style)", visible=styled
        )
        directions = stylizer.family.directions or ("AtoB",)
        direction = gr.Radio(
          list(directions), value=directions[0], label="Direction", visible=not styled
        )
        max_size = gr.Slider(
          *MAX_SIZES[:2], MAX_SIZES[2], step=64, label="Max size (long side, px)"
        )
        preserve = gr.Checkbox(False, label="Preserve colour (the content's chroma)")
        button = gr.Button("Stylize", variant="primary", elem_id="stylize")
      with gr.Column():
        result = gr.Image(
          type="numpy",
          format="png",
          label="Result",
          interactive=False,
          buttons=["download"],
          height=IMAGE_HEIGHT + 60,
          elem_id="result",
          elem_classes=["fit"],
        )
        status = gr.Markdown(elem_id="status")
    if examples:
      gr.Examples(
        examples,
        inputs=[content, style_1] if styled else [content],
        label="Held-out images of this run's newest sample grid",
      )
    button.click(
      run,
      inputs=[content, style_1, style_2, weight, alpha, preserve, max_size, direction],
      outputs=[result, status],
      api_name="stylize",
      preprocess=False,  # uploads are read by the project's decoder (errors in the page)
    )
  return blocks, examples_dir


def launch(blocks, examples_dir: str, host: str, port: int, block: bool = True):
  """Serves `blocks` on host:port (local only unless host says otherwise).

  Raises:
    UserError: the port is taken or out of range.
  """
  if not 0 < port < 65536:
    raise UserError(f"--port={port}: use a port number in 1-65535")
  try:
    blocks.launch(
      server_name=host,
      server_port=port,
      share=False,
      quiet=True,
      prevent_thread_lock=True,
      allowed_paths=[examples_dir],
      max_file_size=f"{MAX_UPLOAD_MB}mb",
      ssr_mode=False,
      mcp_server=False,
      css=CSS,
    )
  except OSError as e:
    raise UserError(f"cannot serve on {host}:{port} ({e}); choose another --port") from None
  if block:
    blocks.block_thread()  # until Ctrl-C
  return blocks


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top

  from ganstyle_jax import console, stylize  # pylint: disable=g-import-not-at-top

  if len(argv) > 1:
    raise UserError(f"unexpected arguments: {' '.join(argv[1:])}")
  f = flags.FLAGS
  try:
    import gradio  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
  except ImportError:
    raise UserError("the app needs Gradio: pip install -e '.[app]'") from None
  stylizer = stylize.load(f.workdir)
  blocks, examples_dir = build_app(stylizer, os.path.abspath(f.workdir))
  launch(blocks, examples_dir, f.host, f.port, block=False)
  console.write(
    f"Serving {stylizer.name} (step {stylizer.step} of {os.path.abspath(f.workdir)}) at "
    f"http://{f.host}:{f.port}; Ctrl-C stops it"
  )
  blocks.block_thread()  # until Ctrl-C


def run():
  """Console script `ganstyle-app`."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  flags.DEFINE_string("workdir", None, "Training workdir (its newest readable checkpoint).")
  flags.DEFINE_string("host", "127.0.0.1", "Address to bind (0.0.0.0: every interface).")
  flags.DEFINE_integer("port", 7860, "Port to serve on.")
  flags.mark_flags_as_required(["workdir"])
  run_cli(main)


if __name__ == "__main__":
  run()
