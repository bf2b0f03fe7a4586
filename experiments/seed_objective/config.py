"""Arms of the seed-objective study: `--config=experiments/seed_objective/config.py:ARM`.

Every arm is the same adain_gan recipe on the multi-style synthetic benchmark (64 px, frozen
random VGG19, STYLES train styles, evaluated on held-out styles never seen in training) with
one change; the study README says what each arm tests. ARM names: see ARMS.
"""

import os
import runpy

from ganstyle_jax.config_base import base_config

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
STYLES = 16
STEPS = 600
EVAL_EVERY = 200
LONG_STEPS = 3000  # the longer budget (15 CPU-minutes on 2 cores, measured)


def recipe():
  """The base recipe (configs/demo.py is its colour_no_adv arm at 300 steps)."""
  c = base_config("adain_gan")
  _schedule(c)
  c.data.global_batch_size = 4
  c.data.synthetic_styles = STYLES
  c.model.vgg.weights = "random"
  c.model.generator.encoder_layer = "relu2_1"
  c.model.discriminator.ndf = 32
  c.loss.content_type = "pixel"
  c.loss.w_style = 1.0
  c.loss.style_layers = ("relu1_1", "relu2_1")
  c.loss.style_layer_weights = (1.0, 1.0)
  c.loss.adv_type = "lsgan"
  c.loss.w_adv = 1.0
  return c


def single_style(c):
  """The single-style benchmark: style 0 only (the known answer is painting(C))."""
  c.data.synthetic_styles = 1
  return c


def _no_adv(c):
  c.loss.w_adv = 0.0
  return c


def _adv(kind):
  def arm(c):
    c.loss.adv_type = kind
    return c

  return arm


def _supervised(c):
  """The ceiling: G trained with L1 to the known answer alone."""
  c.loss.w_adv = c.loss.w_content = c.loss.w_style = 0.0
  c.loss.w_supervised = 10.0
  return c


def _cyclegan_residual():
  """configs/demo_cyclegan.py on the single-style benchmark, STEPS steps: generators that
  start as the identity (model.generator.residual), a spectrally normalised PatchGAN without
  instance norm (the best of six seed-0 probes, session 11: see the study README)."""
  c = runpy.run_path(os.path.join(REPO, "configs", "demo_cyclegan.py"))["get_config"]()
  _schedule(c)
  c.data.synthetic_styles = 1
  return c


def _cyclegan():
  """Session 8's CycleGAN: the demo config before session 11 (tanh generators, instance-norm
  PatchGAN)."""
  c = _cyclegan_residual()
  c.model.generator.residual = False
  c.model.discriminator.norm = "instance"
  c.model.discriminator.spectral_norm = False
  return c


def _cyclegan_residual_ema():
  """_cyclegan_residual, evaluated with an EMA of G's params (model.ema_decay 0.99: about the
  last 100 steps), which averages out the adversarial game's step-to-step swings."""
  c = _cyclegan_residual()
  c.model.ema_decay = 0.99
  return c


def _pix2pix():
  """The single-style ceiling: pix2pix on the synthetic (photo, painting) pairs."""
  c = base_config("pix2pix")
  _schedule(c)
  c.data.global_batch_size = 4
  c.model.vgg.weights = "random"
  c.model.generator.ngf = 32
  c.model.generator.num_downs = 6
  c.model.discriminator.ndf = 32
  c.loss.adv_type = "nonsat"
  c.loss.w_supervised = 100.0
  return c


def _steps(n):
  """The same arm for n steps (evaluated every EVAL_EVERY)."""

  def arm(c):
    c.total_steps = c.checkpoint_every_steps = c.sample_every_steps = n
    return c

  return arm


def _long(c):
  """The same arm at LONG_STEPS steps, evaluated every 500."""
  c = _steps(LONG_STEPS)(c)
  c.eval_every_steps = 500
  return c


def _schedule(c):
  c.total_steps = STEPS
  c.log_every_steps = 50
  c.checkpoint_every_steps = STEPS
  c.sample_every_steps = STEPS
  c.eval_every_steps = EVAL_EVERY
  c.num_eval_images = 64
  c.num_sample_images = 6


def _attention(c):
  """The generator's transfer: content-to-style attention (a soft style swap) for AdaIN."""
  c.model.generator.transfer = "attention"
  return c


def _colour(c):
  """The generator's transfer: colour attention (each pixel takes the style image's nearest
  colours; the decoder adds a log-gain for shading and outlines)."""
  c.model.generator.transfer = "colour"
  return c


def _style_conditioned(c):
  """D judges (image, style image) pairs; its real pairs are other scenes painted in the style
  image's style (data.real=synthetic:same_style), so it can see whether G's output is a
  painting in S's style: palette, flat regions, dark outlines."""
  c.loss.adv_condition = "style"
  c.data.real = "synthetic:same_style"
  return c


def _fast_colour(c):
  """The colour pick's parameters (3 small tensors) learn at 25x G's rate: at 1x Adam moves
  each by at most 2e-4 a step, so the pick barely changes in 600 steps (Session 11)."""
  c.optim.g.lr_scales = "^colour/=25"
  return c


def _outlines(c):
  """The colour generator with its outline module (model.generator.outlines): dark lines where
  the photo's luminance changes sharply, starting at half brightness, trained at G's rate."""
  c.model.generator.outlines = True
  return c


def _strong_d(c):
  """A D that can see outlines sooner: 5x G's learning rate (TTUR, Heusel et al. 2017), no
  instance norm, w_adv 5. Trained alone to tell a painting from the same painting without its
  outlines (d_probe.py, one seed), the study's D (instance norm, 2e-4) is near chance for
  800 steps; without instance norm, or at 1e-3, it separates them from step 400-800."""
  c.optim.d.lr = 1e-3
  c.model.discriminator.norm = "none"
  c.loss.w_adv = 5.0
  return c


def _smooth_query(c):
  """The colour pick's query filter starts as a 3x3 binomial smoothing of the photo (denoise,
  then quantise), not the identity (model.generator.smooth_query)."""
  c.model.generator.smooth_query = True
  return c


def _bfloat16(c):
  """The networks compute in bfloat16 (compute_dtype; parameters and optimizer states stay
  float32): issue 21's item 4 asks whether it keeps the known-answer quality on CPUs with AMX."""
  c.compute_dtype = "bfloat16"
  return c


ARMS = {
  "colour_no_adv": lambda: _colour(_no_adv(recipe())),
  "colour_hinge": lambda: _colour(_adv("hinge")(recipe())),
  "colour_supervised": lambda: _colour(_supervised(recipe())),
  "colour_cond_hinge": lambda: _colour(_style_conditioned(_adv("hinge")(recipe()))),
  "fast_colour_no_adv": lambda: _fast_colour(_colour(_no_adv(recipe()))),
  "fast_colour_supervised": lambda: _fast_colour(_colour(_supervised(recipe()))),
  "fast_colour_cond_hinge": lambda: _fast_colour(
    _colour(_style_conditioned(_adv("hinge")(recipe())))
  ),
  "fast_colour_no_adv_1200": lambda: _steps(1200)(_fast_colour(_colour(_no_adv(recipe())))),
  "fast_colour_cond_hinge_1200": lambda: _steps(1200)(
    _fast_colour(_colour(_style_conditioned(_adv("hinge")(recipe()))))
  ),
  "outline_no_adv": lambda: _outlines(_colour(_no_adv(recipe()))),
  "outline_cond_hinge": lambda: _strong_d(
    _outlines(_colour(_style_conditioned(_adv("hinge")(recipe()))))
  ),
  "smooth_outline_no_adv": lambda: _smooth_query(_outlines(_colour(_no_adv(recipe())))),
  "smooth_outline_cond_hinge": lambda: _smooth_query(
    _strong_d(_outlines(_colour(_style_conditioned(_adv("hinge")(recipe())))))
  ),
  "smooth_outline_cond_hinge_bf16": lambda: _bfloat16(
    _smooth_query(_strong_d(_outlines(_colour(_style_conditioned(_adv("hinge")(recipe()))))))
  ),
  "attn_no_adv": lambda: _attention(_no_adv(recipe())),
  "attn_hinge": lambda: _attention(_adv("hinge")(recipe())),
  "attn_supervised": lambda: _attention(_supervised(recipe())),
  "no_adv": lambda: _no_adv(recipe()),
  "nonsat": lambda: _adv("nonsat")(recipe()),
  "lsgan": lambda: _adv("lsgan")(recipe()),
  "hinge": lambda: _adv("hinge")(recipe()),
  "supervised": lambda: _supervised(recipe()),
  "hinge_long": lambda: _long(_adv("hinge")(recipe())),
  "single_no_adv": lambda: single_style(_no_adv(recipe())),
  "single_adain": lambda: single_style(_adv("hinge")(recipe())),
  "single_cyclegan": _cyclegan,
  "single_cyclegan_residual": _cyclegan_residual,
  "single_cyclegan_residual_ema": _cyclegan_residual_ema,
  "single_pix2pix": _pix2pix,
}
LABELS = {
  "colour_no_adv": "colour-attention G, no adversarial term",
  "colour_hinge": "colour-attention G, hinge",
  "colour_supervised": "ceiling: colour-attention G, L1 to the known answer",
  "colour_cond_hinge": "colour-attention G, hinge, style-conditioned D",
  "fast_colour_no_adv": "colour-attention G (colour pick at 25x lr), no adversarial term",
  "fast_colour_supervised": "ceiling: colour-attention G (colour pick at 25x lr), L1 to the answer",
  "fast_colour_cond_hinge": "colour-attention G (colour pick at 25x lr), hinge, style-cond. D",
  "fast_colour_no_adv_1200": "colour-attention G (colour pick at 25x lr), no adversarial term, 1200 steps",
  "fast_colour_cond_hinge_1200": "colour-attention G (colour pick at 25x lr), hinge, style-cond. D, 1200 steps",
  "outline_no_adv": "colour-attention G + outlines, no adversarial term",
  "outline_cond_hinge": "colour-attention G + outlines, hinge, style-cond. D at 5x lr, w_adv 5",
  "smooth_outline_no_adv": "colour-attention G, smoothed query + outlines, no adversarial term",
  "smooth_outline_cond_hinge": "colour-attention G, smoothed query + outlines, hinge, style-cond. D at 5x lr, w_adv 5",
  "smooth_outline_cond_hinge_bf16": "the same, computed in bfloat16",
  "attn_no_adv": "attention G, no adversarial term",
  "attn_hinge": "attention G, hinge",
  "attn_supervised": "ceiling: attention G, L1 to the known answer",
  "no_adv": "AdaIN, no adversarial term",
  "nonsat": "AdaIN-GAN, nonsat (the seed's)",
  "lsgan": "AdaIN-GAN, LSGAN",
  "hinge": "AdaIN-GAN, hinge",
  "supervised": "ceiling: AdaIN G, L1 to the known answer",
  "hinge_long": "AdaIN-GAN, hinge, 3000 steps",
  "single_no_adv": "AdaIN, no adversarial term",
  "single_adain": "AdaIN-GAN, hinge (session 8's demo recipe)",
  "single_cyclegan": "CycleGAN (session 8's demo config)",
  "single_cyclegan_residual": "CycleGAN, G starts as the identity, spectral-norm D (demo config)",
  "single_cyclegan_residual_ema": "CycleGAN, G starts as the identity, spectral-norm D, EMA of G (0.99)",
  "single_pix2pix": "ceiling: pix2pix (paired)",
}
BENCHMARKS = {
  "multi_style": (
    "no_adv",
    "nonsat",
    "lsgan",
    "hinge",
    "supervised",
    "hinge_long",
    "attn_no_adv",
    "attn_hinge",
    "attn_supervised",
    "colour_no_adv",
    "colour_hinge",
    "colour_supervised",
    "colour_cond_hinge",
    "fast_colour_no_adv",
    "fast_colour_supervised",
    "fast_colour_cond_hinge",
    "fast_colour_no_adv_1200",
    "fast_colour_cond_hinge_1200",
    "outline_no_adv",
    "outline_cond_hinge",
    "smooth_outline_no_adv",
    "smooth_outline_cond_hinge",
    "smooth_outline_cond_hinge_bf16",
  ),
  "single_style": (
    "single_no_adv",
    "single_adain",
    "single_cyclegan",
    "single_cyclegan_residual",
    "single_cyclegan_residual_ema",
    "single_pix2pix",
  ),
}


def get_config(arm: str = "lsgan"):
  return ARMS[arm]()
