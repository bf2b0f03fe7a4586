"""Demo: adain_gan on the embedded synthetic dataset, 64 px, random VGG, 2-core CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo
Expected: not measured yet.
"""
from ganstyle_jax.config_base import base_config


def get_config():
  c = base_config("adain_gan")
  c.total_steps = 600
  c.log_every_steps = 50
  c.checkpoint_every_steps = 200
  c.sample_every_steps = 100
  c.eval_every_steps = 200
  c.data.global_batch_size = 8
  c.model.vgg.weights = "random"        # no download: frozen He-init features
  c.model.generator.encoder_layer = "relu3_1"
  c.model.discriminator.ndf = 32
  return c
