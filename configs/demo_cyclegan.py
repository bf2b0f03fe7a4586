"""Demo: CycleGAN photo <-> painting on the embedded synthetic dataset, 64 px, 2-core CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo_cyclegan.py --workdir=workdir/demo_cyclegan
Expected: 161 s on a 2-core CPU (synthetic dataset already built); known-answer metrics of
  G(photo) vs painting(photo) on 16 held-out scenes at steps 200 / 400: PSNR 12.50 / 12.99 dB,
  SSIM 0.080 / 0.122, against the identity baseline 15.12 dB / 0.253: below the baseline.
  The sample grids (A | G(A) | B | F(B)) show G(A) keeping the scenes' layout with shifted,
  blurred colours after 400 steps.
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
  c.model.generator.ngf = 16  # small ResNet generator for the CPU
  c.model.generator.n_blocks = 3
  c.model.discriminator.ndf = 16
  c.loss.pool_size = 50
  c.model.vgg.weights = "random"  # evaluation metrics only; no download
  return c
