"""Settings shared by every arm of the study (imported by the arm config files beside it).

All arms: the embedded synthetic dataset at 64 px, batch 4, STEPS steps, frozen random VGG19
(no download), evaluation on the 64 held-out test scenes every 200 steps.
"""

from ganstyle_jax.config_base import base_config

STEPS = 800


def _common(c):
  c.total_steps = STEPS
  c.log_every_steps = 25
  c.checkpoint_every_steps = STEPS
  c.sample_every_steps = STEPS
  c.eval_every_steps = 200
  c.num_eval_images = 64
  c.num_sample_images = 6
  c.data.global_batch_size = 4
  c.model.vgg.weights = "random"
  return c


def adain(*, w_adv: float, adv_type: str = "lsgan", style_type: str = "mean_std"):
  """configs/demo.py's adain_gan (relu2_1 encoder, pixel content, w_style 1) with one change."""
  c = _common(base_config("adain_gan"))
  c.model.generator.encoder_layer = "relu2_1"
  c.model.discriminator.ndf = 32
  c.loss.content_type = "pixel"
  c.loss.w_style = 1.0
  c.loss.style_layers = ("relu1_1", "relu2_1")
  c.loss.style_layer_weights = (1.0, 1.0)
  c.loss.style_type = style_type
  c.loss.w_adv = w_adv
  c.loss.adv_type = adv_type
  return c


def cyclegan():
  """configs/demo_cyclegan.py (ngf 16, 3 residual blocks, lsgan, lambda 10)."""
  c = _common(base_config("cyclegan"))
  c.model.generator.ngf = 16
  c.model.generator.n_blocks = 3
  c.model.discriminator.ndf = 16
  c.loss.pool_size = 50
  return c
