"""Demo: adain_gan (the seed's G(C, S)) with colour attention, a smoothed colour pick, outlines
and a style-conditioned D, on the multi-style synthetic benchmark, CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo
The study's `smooth_outline_cond_hinge` recipe (experiments/seed_objective) at half its steps,
to fit 3 minutes on 2 cores: 64 px, batch 4, 300 steps, frozen random VGG19 (no download),
encoder relu2_1. Generator transfer 'colour': each pixel takes the style image's colours
nearest its 3x3-smoothed self by attention (smooth_query), the decoder adds a per-pixel
log-gain, and the outline module darkens pixels where the photo's luminance changes sharply
(outlines, starting at half brightness). Losses: the seed's pixel content loss, mean/std
style loss on relu1_1 and relu2_1 (w_style 1), and the hinge adversarial term (w_adv 5) of a
PatchGAN without instance norm at 5x G's learning rate that judges (image, style image)
pairs, its real pairs two paintings in one style. Training paintings in 16 styles; evaluated
on 64 held-out pairs whose style images are in styles never seen in training (known answer:
the photo painted with the style image's colours, edges darkened).

Measured 2026-12-05 on 2 cores of an AMD EPYC, benchmark version 2.0.0 (the README's first
command on a fresh clone of commit d14ce8d: venv, pip install, then `python -m
ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo`; seed 0; 3m50s end to end,
steps 0 -> 300 in 2m14s at 10.9 images/s): known-answer PSNR on the 64 held-out pairs (unseen
styles) 19.04 dB at step 150 and 19.93 dB, SSIM 0.641 at step 300, against the identity
15.32 dB / 0.262, Reinhard colour transfer 12.28 dB / 0.104 and the style-blind style-0
painting 14.22 dB / 0.281: above every baseline. The same command gave 20.09 dB at step 150
and 19.07 dB / 0.555 at step 300 before Winograd's kernel and output transforms became
matmuls (commit 8e63194, 2026-12-04), and 20.14 and 20.34 dB / 0.680 before the 3x3 filters
became convolutions (commit 46cd51e). Each change kept the arithmetic and changed only the
rounding: a single run of this recipe moves by about 1 dB with it, so read it beside the
3-seed spread below. The samples show flat regions in
the style image's colours with the photo's layout and dark outlines around the shapes; at
step 300 some regions are tinted back toward the photo's colours (the decoder's log-gain).
Session 12's demo (colour attention alone, no D) scored 17.26 dB / 0.460 the same way.

Where the numbers come from (experiments/seed_objective/README.md, session 13): untrained,
this generator scores 20.29 dB; the seed's content and style terms pull it toward the photo
as it trains, and the D slows that. At 600 steps, 3 seeds: 19.85 +- 0.22 dB with D, 18.39 +-
0.32 dB without (loss.w_adv=0). The outlines are the module's initial ones: no loss term
deepens them in this budget.
"""

from ganstyle_jax.config_base import base_config


def get_config():
  c = base_config("adain_gan")
  c.total_steps = 300
  c.log_every_steps = 50
  c.checkpoint_every_steps = 150
  c.sample_every_steps = 50
  c.eval_every_steps = 150
  c.num_eval_images = 64
  c.num_sample_images = 6
  c.data.global_batch_size = 4
  c.data.synthetic_styles = 16
  c.model.vgg.weights = "random"  # no download: frozen He-init features
  c.model.generator.encoder_layer = "relu2_1"
  c.model.generator.transfer = "colour"
  c.model.generator.outlines = True
  c.model.generator.smooth_query = True
  c.model.discriminator.ndf = 32
  c.model.discriminator.norm = "none"
  c.optim.d.lr = 1e-3  # 5x G's (TTUR)
  c.loss.content_type = "pixel"  # the seed's ||G(C, S) - C||^2
  c.loss.w_style = 1.0
  c.loss.style_layers = ("relu1_1", "relu2_1")
  c.loss.style_layer_weights = (1.0, 1.0)
  c.loss.adv_type = "hinge"
  c.loss.w_adv = 5.0
  c.loss.adv_condition = "style"  # D judges (image, style image) pairs ...
  c.data.real = "synthetic:same_style"  # ... its real pairs: two paintings in one style
  return c
