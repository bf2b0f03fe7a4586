"""Demo: adain_gan (the seed's G(C, S) + PatchGAN) on the multi-style synthetic benchmark, CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo
The recipe of experiments/seed_objective (its `lsgan` arm, whose training this is exactly):
64 px, batch 4, 600 steps, frozen random VGG19 (no download), encoder relu2_1, the seed's
pixel content loss, mean/std style loss on relu1_1 and relu2_1 (w_style 1), LSGAN with a
32-wide PatchGAN; training paintings in 16 styles; evaluated on 64 held-out pairs whose style
images are in styles never seen in training (known answer: the photo's scene painted in the
style image's colour scheme).

Measured: see MEASURED below (filled in from the runs it names).
"""

from ganstyle_jax.config_base import base_config

MEASURED = "not yet measured"


def get_config():
  c = base_config("adain_gan")
  c.total_steps = 600
  c.log_every_steps = 50
  c.checkpoint_every_steps = 200
  c.sample_every_steps = 100
  c.eval_every_steps = 200
  c.num_eval_images = 64
  c.num_sample_images = 6
  c.data.global_batch_size = 4
  c.data.synthetic_styles = 16
  c.model.vgg.weights = "random"  # no download: frozen He-init features
  c.model.generator.encoder_layer = "relu2_1"
  c.model.discriminator.ndf = 32
  c.loss.content_type = "pixel"  # the seed's ||G(C, S) - C||^2
  c.loss.w_style = 1.0
  c.loss.style_layers = ("relu1_1", "relu2_1")
  c.loss.style_layer_weights = (1.0, 1.0)
  c.loss.adv_type = "lsgan"
  return c
