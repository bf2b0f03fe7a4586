"""Tiny configs for tests and quick checks: 32 px, narrow networks, few synthetic scenes.

  python -m ganstyle_jax.main --config=configs/tiny.py:cyclegan --workdir=/tmp/tiny

Each process builds its own small synthetic dataset (DATA_DIR), so parallel test workers do
not race on one build.
"""

import os
import tempfile

from ganstyle_jax.config_base import base_config

DATA_DIR = os.path.join(tempfile.gettempdir(), f"ganstyle_test_tfds_{os.getpid()}")


def tiny_config(model: str = "adain_gan", parallelism: str = "pmap", steps: int = 4):
  c = base_config(model)
  c.total_steps = steps
  c.log_every_steps = 2
  c.checkpoint_every_steps = 2
  c.sample_every_steps = 2
  c.eval_every_steps = 2
  c.parallelism = parallelism
  c.num_eval_images = 8
  c.num_sample_images = 2
  d = c.data
  d.image_size = d.load_size = d.synthetic_size = 32
  d.global_batch_size = 8
  d.synthetic_train_size, d.synthetic_test_size, d.shuffle_buffer = 48, 8, 32
  d.data_dir = DATA_DIR
  c.model.vgg.weights = "random"
  c.model.generator.encoder_layer = "relu2_1"
  c.model.generator.ngf, c.model.generator.n_blocks = 8, 1
  c.model.generator.num_downs = 5  # pix2pix: a 32 px U-Net
  c.model.discriminator.ndf = 8
  c.loss.pool_size = 4
  return c


def get_config(model: str = "adain_gan"):
  return tiny_config(model)
