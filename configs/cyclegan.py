"""CycleGAN monet2photo as in Zhu et al. 2017: 256 px, batch 1, LSGAN, cycle 10, identity 0.5.

100 epochs at lr 2e-4, then 100 epochs of linear decay to 0, with 1072 Monet paintings (the
larger domain of the reference's epoch: max(|A|, |B|) = 6287 photos): steps = 200 * 6287.

Run:
  python -m ganstyle_jax.main --config=configs/cyclegan.py --workdir=workdir/cyclegan
Expected runtime and result: not measured (needs cycle_gan/monet2photo prepared by TFDS and an
accelerator: 1.26 M steps at batch 1).
"""

from ganstyle_jax.config_base import base_config

EPOCH_STEPS = 6287  # images in the larger domain (photos, trainB) at batch 1


def get_config():
  c = base_config("cyclegan")
  c.total_steps = 200 * EPOCH_STEPS
  c.log_every_steps = 100
  c.checkpoint_every_steps = 10_000
  c.sample_every_steps = 2_000
  c.eval_every_steps = 0
  c.data.content = "tfds:cycle_gan/monet2photo:trainA"  # domain A: Monet
  c.data.style = "tfds:cycle_gan/monet2photo:trainB"  # domain B: photos
  c.data.real = "tfds:cycle_gan/monet2photo:trainB"
  c.data.image_size = 256
  c.data.load_size = 286  # resize to 286, random crop 256, flip
  c.data.global_batch_size = 1
  c.model.generator.ngf = 64
  c.model.generator.n_blocks = 9
  c.model.discriminator.ndf = 64
  c.loss.adv_type = "lsgan"
  c.loss.w_cycle = 10.0
  c.loss.w_identity = 5.0  # lambda_identity 0.5 * w_cycle
  c.loss.pool_size = 50
  for opt in (c.optim.g, c.optim.d):
    opt.schedule = "linear"
    opt.decay_start_step = 100 * EPOCH_STEPS
  return c
