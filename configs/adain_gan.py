"""The full AdaIN-GAN recipe (the seed's model): G(C, S) with an adversarial term, 256 px.

Content from COCO-like photos, style and real images from an art dataset; VGG19 ImageNet
weights (downloaded once, verified; see README). Defaults use TFDS cycle_gan/monet2photo so
it runs with no extra preparation: photos (trainB) as content, Monet paintings (trainA) as
style and real images. Point data.* at folders for WikiArt/COCO-scale training:
  --config.data.content=folder:/data/coco/train2017 --config.data.style=folder:/data/wikiart

Run:
  python -m ganstyle_jax.main --config=configs/adain_gan.py --workdir=workdir/adain_gan
Expected runtime and result: not measured (needs the dataset and ImageNet VGG weights, and an
accelerator for a useful number of steps).
"""

from ganstyle_jax.config_base import base_config


def get_config():
  c = base_config("adain_gan")
  c.total_steps = 160_000  # as Huang & Belongie (160k iterations, batch 8)
  c.log_every_steps = 100
  c.checkpoint_every_steps = 5_000
  c.sample_every_steps = 1_000
  c.eval_every_steps = 5_000
  c.data.content = "tfds:cycle_gan/monet2photo:trainB"
  c.data.style = "tfds:cycle_gan/monet2photo:trainA"
  c.data.real = "tfds:cycle_gan/monet2photo:trainA"
  c.data.image_size = 256
  c.data.load_size = 512  # AdaIN: resize the shorter side to 512, crop 256
  c.data.global_batch_size = 8
  c.model.vgg.weights = "imagenet"
  c.model.generator.encoder_layer = "relu4_1"
  c.loss.adv_type = "lsgan"
  c.loss.w_content = 1.0
  c.loss.w_style = 10.0
  c.loss.w_adv = 0.1  # a light adversarial term on top of AdaIN's losses
  c.optim.g.lr = 1e-4  # AdaIN's decoder lr
  return c
