"""Demo: adain_gan (the seed's G(C, S) + PatchGAN) on the embedded synthetic dataset, 2-core CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo
Expected: 164 s on a 2-core CPU (plus about 18 s to build the synthetic dataset on first use);
  known-answer metrics on 16 held-out scenes at steps 200 / 400 / 600:
  PSNR 12.49 / 12.76 / 12.49 dB, SSIM 0.094 / 0.101 / 0.107, against the identity baseline
  (the photo itself) 15.12 dB / 0.253: below the baseline (see below). A second run (fresh
  clone, README command, 177 s including the pip check) gave 12.53 / 12.70 / 12.14 dB and
  SSIM 0.095 / 0.109 / 0.096: runs vary by a few tenths of a dB. With the evaluation suite
  added (each eval also logs style distances, SWD and FID-VGG; ganstyle_jax/evaluate.py), a
  fresh clone took 168 s and gave the same 12.53 / 12.70 / 12.14 dB; SWD 122 / 127 / 125.
  With the 3x3 layers as Winograd matmuls on the CPU (layers.conv2d), a fresh clone took 153 s
  including the pip install (28-39 images/s logged at steps 100-200) and gave 12.49 / 12.75 /
  12.46 dB: the same within the run-to-run spread.

Choices, measured on 600-step runs (batch 4, 64 px, random VGG; known-answer PSNR/SSIM of
G(photo) vs painting(photo) on 16 held-out scenes; identity baseline 15.12 dB / 0.253):
  encoder relu3_1, perceptual content, w_style 10 ......... 11.01 dB / 0.055
  encoder relu3_1, pixel content, w_style 10 .............. 11.02 dB / 0.054
  encoder relu3_1, pixel content, w_style 1 ............... 12.24 dB / 0.080
  encoder relu3_1, pixel content, w_style 1, w_adv 5 ...... 11.86 dB / 0.054
  encoder relu3_1, pixel content, w_style 1, G lr 1e-3 .... 10.93 dB / 0.040
  encoder relu2_1, pixel content, w_style 1 (this config) . 12.33 dB / 0.087 (12.49 / 0.107
                                                             in the run above: runs vary)
No arm beats the identity baseline in this budget: the outputs keep the scenes' shapes and move
their colours toward the painting palette (see samples/), but do not yet reproduce the exact
quantisation and dark edges of the painting function. The relu2_1 encoder keeps shapes far
sharper than relu3_1 or relu4_1 with frozen random VGG features.
"""
from ganstyle_jax.config_base import base_config


def get_config():
  c = base_config("adain_gan")
  c.total_steps = 600
  c.log_every_steps = 50
  c.checkpoint_every_steps = 200
  c.sample_every_steps = 100
  c.eval_every_steps = 200
  c.data.global_batch_size = 4
  c.model.vgg.weights = "random"              # no download: frozen He-init features
  c.model.generator.encoder_layer = "relu2_1"
  c.model.discriminator.ndf = 32
  c.loss.content_type = "pixel"               # the seed's ||G(C, S) - C||^2
  c.loss.w_style = 1.0
  c.loss.style_layers = ("relu1_1", "relu2_1")
  c.loss.style_layer_weights = (1.0, 1.0)
  return c
