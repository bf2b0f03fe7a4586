"""Demo: adain_gan (the seed's G(C, S) + PatchGAN) on the multi-style synthetic benchmark, CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo
The study's `hinge` arm (experiments/seed_objective, whose training this is exactly): 64 px,
batch 4, 600 steps, frozen random VGG19 (no download), encoder relu2_1, the seed's pixel
content loss, mean/std style loss on relu1_1 and relu2_1 (w_style 1), hinge adversarial loss
with a 32-wide PatchGAN; training paintings in 16 styles; evaluated on 64 held-out pairs whose
style images are in styles never seen in training (known answer: the photo painted with the
style image's colours).

Measured 2026-12-02 on 2 cores of an AMD EPYC on benchmark version 2.0.0 (the known answer
snaps the photo to the style image's palette; `python experiments/seed_objective/run.py
--arms=hinge --seeds=0`, the hinge arm = this config, seed 0 only): known-answer PSNR on the
64 held-out pairs (unseen styles) 12.13 dB, SSIM 0.083, against the identity 15.32 dB / 0.262,
Reinhard colour transfer 12.28 dB / 0.104 and the style-blind style-0 painting 14.22 dB /
0.281: below every baseline. The recipe does not work on this benchmark (see
experiments/seed_objective/README.md); on version 1 (seeds 0-2) it had scored 11.34 +- 0.09 dB
against 11.18 / 10.86, a margin that version's flaw made meaningless.
"""

from ganstyle_jax.config_base import base_config


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
  c.loss.adv_type = "hinge"
  return c
