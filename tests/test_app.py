"""The web app (ganstyle_jax/app.py): served on 127.0.0.1 and driven with gradio_client, and once
through a headless browser (Debian's chromium, driven by Playwright; skipped without them).

One app serves the whole module, on a tiny adain_gan checkpoint written without training (the
app only needs parameters of the right shapes) and a sample grid for its examples.
"""

import json
import os
import shutil
import socket

import jax
import numpy as np
import pytest
from PIL import Image

from ganstyle_jax import app, build, checkpointing, stylize, train
from ganstyle_jax.errors import UserError
from ganstyle_jax.models import vgg
from configs.tiny import tiny_config

gradio_client = pytest.importorskip("gradio_client", reason="the [app] extra is not installed")


def image(h, w, seed):
  return np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
  """A checkpoint at step 1 of random tiny adain_gan params, and a sample grid.

  The parameters are drawn on the host in the shapes of an initial state (jax.eval_shape),
  which skips compiling the networks' init: the app only needs parameters of the right shapes.
  """
  wd = tmp_path_factory.mktemp("app_run")
  config = tiny_config("adain_gan", "jit")
  setup = build.build_setup(config)
  shapes = jax.eval_shape(lambda: build.init_state(setup, jax.random.key(0), 32))
  rng = np.random.default_rng(0)
  state = jax.tree.map(
    lambda x: (
      (0.05 * rng.standard_normal(x.shape)).astype(x.dtype)
      if np.issubdtype(x.dtype, np.floating)
      else np.zeros(x.shape, x.dtype)
    ),
    shapes,
  )
  ckpt = checkpointing.Checkpointer(checkpointing.checkpoint_dir(wd), writer=True)
  meta = {"model": setup.name, "config": json.loads(config.to_json_best_effort())}
  ckpt.save(1, state, {}, meta)
  ckpt.close()
  size = config.data.image_size
  columns = [np.random.default_rng(i).uniform(-1, 1, (3, size, size, 3)) for i in range(4)]
  (wd / "samples").mkdir()
  Image.fromarray(train.sample_grid(columns)).save(wd / "samples" / "step_000001.png")
  return wd


@pytest.fixture(scope="module")
def served(workdir):
  """(url, stylizer, blocks) of the app serving `workdir` on 127.0.0.1."""
  stylizer = stylize.load(workdir)
  blocks, examples_dir = app.build_app(stylizer, str(workdir))
  port = free_port()
  app.launch(blocks, examples_dir, "127.0.0.1", port, block=False)
  yield f"http://127.0.0.1:{port}/", stylizer, blocks
  blocks.close()


@pytest.fixture(scope="module")
def images(tmp_path_factory):
  d = tmp_path_factory.mktemp("app_images")
  sizes = {"content": (50, 70, 0), "content_2": (60, 100, 3), "style": (40, 40, 1)}
  for name, (h, w, seed) in {**sizes, "big": (80, 80, 2)}.items():
    Image.fromarray(image(h, w, seed)).save(d / f"{name}.png")
  (d / "notes.png").write_text("not an image")
  return d


def predict(client, content, style, alpha=1.0, **kw):
  handle = gradio_client.handle_file
  args = dict(style_2=None, weight=0.5, preserve=False, max_size=512, direction="AtoB")
  args.update(kw)
  return client.predict(
    handle(str(content)),
    handle(str(style)),
    args["style_2"],
    args["weight"],
    alpha,
    args["preserve"],
    args["max_size"],
    args["direction"],
    api_name="/stylize",
  )


def test_client_stylizes_a_pair_alpha_matters_and_sliders_do_not_recompile(served, images):
  url, stylizer, blocks = served
  assert blocks.analytics_enabled is False
  client = gradio_client.Client(url, verbose=False)
  out_1, status_1 = predict(client, images / "content.png", images / "style.png", alpha=1.0)
  assert status_1.startswith("Stylized 70x50 px in ") and "bucket 128x64" in status_1
  compiled = stylizer.compiled_count()
  out_0, status_0 = predict(client, images / "content.png", images / "style.png", alpha=0.0)
  a, b = np.asarray(Image.open(out_1)), np.asarray(Image.open(out_0))
  assert a.shape == b.shape == (50, 70, 3) and not np.array_equal(a, b)
  # Another alpha and another size in the same 64 px bucket reuse the compiled networks.
  _, status = predict(client, images / "content_2.png", images / "style.png", 0.3, preserve=True)
  assert status.startswith("Stylized 100x60 px in ") and "bucket 128x64" in status
  assert stylizer.compiled_count() == compiled and "compiled" not in status_0
  # The app's output is the Stylizer's (the CLI's path) on the bucket-padded input.
  c, s = (
    np.asarray(Image.open(images / "content.png")),
    np.asarray(Image.open(images / "style.png")),
  )
  m = app.bucket_multiple(stylizer)
  direct = stylizer.stylize(app.pad_to_bucket(c, m), [app.pad_to_bucket(s, m)], 1.0)[:50, :70]
  np.testing.assert_array_equal(a, direct)


def test_bad_uploads_are_reported_in_the_page(served, images):
  url, stylizer, _ = served
  client = gradio_client.Client(url, verbose=False)
  out, status = predict(client, images / "notes.png", images / "style.png")
  assert out is None
  assert status.startswith("**Error:** content image 'notes.png': cannot read the image: ")
  assert "Traceback" not in status
  # Too large: the pixel and byte limits of the page's request.
  big = {"path": str(images / "big.png"), "orig_name": "big.png"}
  out, status = app.stylize_request(stylizer, big, str(images / "style.png"), max_pixels=4000)
  assert out is None and "big.png" in status and "exceeds max_image_pixels=4000" in status
  out, status = app.stylize_request(stylizer, big, str(images / "style.png"), max_bytes=100)
  assert out is None and "'big.png' is too large" in status
  assert app.stylize_request(stylizer, None, None)[1] == "**Error:** upload a content image"


def test_examples_are_the_sample_grid_images(workdir, served, tmp_path):
  _, stylizer, _ = served
  rows = app.sample_examples(str(workdir), stylizer, str(tmp_path), n=2)
  assert len(rows) == 2 and all(len(r) == 2 for r in rows)  # content, style
  assert np.asarray(Image.open(rows[1][1])).shape == (32, 32, 3)
  assert app.sample_examples(str(tmp_path), stylizer, str(tmp_path)) == []  # no samples: none


def test_a_port_out_of_range_is_one_clear_error(served):
  _, _, blocks = served
  for port in (-1, 99999):  # socket.bind's OverflowError would be a traceback
    with pytest.raises(UserError, match=f"--port={port}: use a port number in 1-65535"):
      app.launch(blocks, "", "127.0.0.1", port, block=False)


def visible_inputs(blocks) -> dict[str, bool]:
  return {b.elem_id: b.visible for b in blocks.blocks.values() if getattr(b, "elem_id", None)}


def test_the_page_offers_a_second_style_only_where_the_generator_mixes_styles(served, tmp_path):
  _, _, blocks = served  # AdaIN: two styles and their weight
  shown = visible_inputs(blocks)
  assert shown["style_1"] and shown["style_2"] and shown["weight"]
  config = tiny_config("adain_gan", "jit")
  config.model.generator.transfer = "colour"  # the demo's generator: one style image
  setup = build.build_setup(config)
  shapes = jax.eval_shape(lambda: setup.family.init_params(setup, jax.random.key(0), 32))
  g_params = jax.tree.map(lambda x: np.zeros(x.shape, x.dtype), shapes["g_params"])
  colour = stylize.Stylizer(config, g_params, vgg.load_params("random"))
  one_style, _ = app.build_app(colour, str(tmp_path))
  shown = visible_inputs(one_style)
  assert shown["style_1"] and not shown["style_2"] and not shown["weight"]
  # Its one network compiles once per size bucket too, and the status line says when.
  content, style = str(tmp_path / "c.png"), str(tmp_path / "s.png")
  Image.fromarray(image(50, 70, 0)).save(content)
  Image.fromarray(image(40, 40, 1)).save(style)
  _, first = app.stylize_request(colour, content, style, alpha=1.0)
  _, second = app.stylize_request(colour, content, style, alpha=0.5)
  assert first.endswith("compiled for this size).") and "compiled" not in second, (first, second)


def chromium() -> str | None:
  for name in (os.environ.get("GANSTYLE_CHROMIUM"), "chromium", "chromium-browser"):
    if name and shutil.which(name):
      return shutil.which(name)
  return None


def test_browser_uploads_two_images_and_shows_the_result(served, images):
  sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed")
  executable = chromium()
  if executable is None:
    pytest.skip("no chromium binary (apt-get install chromium; .ci/run does)")
  url, _, _ = served
  requests = []
  with sync_api.sync_playwright() as p:
    browser = p.chromium.launch(executable_path=executable, args=["--no-sandbox"])
    try:
      page = browser.new_page()
      page.on("request", lambda r: requests.append(r.url))
      page.goto(url)
      page.locator("#content input[type=file]").set_input_files(str(images / "content.png"))
      page.locator("#style_1 input[type=file]").set_input_files(str(images / "style.png"))
      page.locator("#content img").wait_for(timeout=30_000)
      page.locator("#style_1 img").wait_for(timeout=30_000)
      page.click("#stylize")
      page.locator("#result img").wait_for(timeout=60_000)
      assert "Stylized 70x50 px" in page.locator("#status").inner_text(timeout=30_000)
    finally:
      browser.close()
  # Everything the page loaded came from the app itself.
  outside = [u for u in requests if not u.startswith(("http://127.0.0.1", "data:", "blob:"))]
  assert not outside, outside
