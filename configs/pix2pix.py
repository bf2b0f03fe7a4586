"""pix2pix (Isola et al. 2017) on paired images: U-Net 'unet_256' + 70x70 PatchGAN on pairs.

  python -m ganstyle_jax.main --config=configs/pix2pix.py --workdir=DIR \
      --config.data.content=folder:/data/facades/A --config.data.style=folder:/data/facades/B

data.content holds the inputs and data.style the targets, matched by file stem (A/x.jpg with
B/x.png). As the paper: 256 px crops of images loaded at 286 px, batch 1, BCE adversarial
loss + 100 x L1, Adam(2e-4, 0.5, 0.999) constant for half the steps, then linear to 0.
"""

from ganstyle_jax.config_base import base_config


def get_config():
  c = base_config("pix2pix")
  c.total_steps = 80_000  # ~200 epochs of the 400 facades pairs
  c.log_every_steps = 100
  c.checkpoint_every_steps = 5000
  c.sample_every_steps = 2000
  c.eval_every_steps = 5000
  c.data.content = "folder:/path/to/inputs"
  c.data.style = "folder:/path/to/targets"
  c.data.image_size, c.data.load_size = 256, 286
  c.data.global_batch_size = 1
  c.model.generator.num_downs = 8
  c.model.vgg.weights = "random"  # evaluation metrics only
  c.loss.adv_type = "nonsat"
  c.loss.w_adv = 1.0
  c.loss.w_supervised = 100.0
  for o in (c.optim.g, c.optim.d):
    o.schedule = "linear"
    o.decay_start_step = c.total_steps // 2
  return c
