"""Demo: CycleGAN photo <-> painting on the embedded synthetic dataset, 64 px, 2-core CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo_cyclegan.py --workdir=workdir/demo_cyclegan
Expected: not measured yet.
"""
from ganstyle_jax.config_base import base_config


def get_config():
  c = base_config("cyclegan")
  c.total_steps = 400
  c.log_every_steps = 50
  c.checkpoint_every_steps = 200
  c.sample_every_steps = 100
  c.eval_every_steps = 200
  c.data.global_batch_size = 4
  c.model.generator.ngf = 16            # small ResNet generator for the CPU
  c.model.generator.n_blocks = 3
  c.model.discriminator.ndf = 16
  c.loss.pool_size = 50
  return c
