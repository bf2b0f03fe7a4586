"""Demo: adain_gan (the seed's G(C, S)) with colour attention on the multi-style synthetic
benchmark, CPU.

Run:
  python -m ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo
The study's `colour_no_adv` recipe (experiments/seed_objective) at half its steps, to fit 3
minutes on 2 cores: 64 px, batch 4, 300 steps, frozen random VGG19 (no download), encoder
relu2_1, generator transfer 'colour' (each pixel takes the style image's nearest colours by
attention; the decoder adds a per-pixel log-gain), the seed's pixel content loss, mean/std
style loss on relu1_1 and relu2_1 (w_style 1), NO adversarial term: in the study the hinge
term neither helps nor hurts this generator (16.75 +- 0.41 dB against 16.76 +- 0.20 without,
3 seeds, 600 steps), so the demo leaves D out; loss.w_adv=1 turns the GAN back on. Training
paintings in 16 styles; evaluated on 64 held-out pairs whose style images are in styles never
seen in training (known answer: the photo painted with the style image's colours).

Measured 2026-12-02 on 2 cores of an AMD EPYC, benchmark version 2.0.0 (`python -m
ganstyle_jax.main --config=configs/demo.py --workdir=workdir/demo` on a fresh clone; seed 0;
2m54s end to end): known-answer PSNR at step 300 on the 64 held-out pairs (unseen styles)
17.26 dB, SSIM 0.460, against the identity 15.32 dB / 0.262, Reinhard colour transfer
12.28 dB / 0.104 and the style-blind style-0 painting 14.22 dB / 0.281: above every baseline.
Session 11 (2026-12-02, the same command on a fresh clone, 2 cores of an AMD EPYC, 2m26s with
the pip install and the dataset build): 17.33 dB, SSIM 0.468. The code is unchanged; the
floats differ (pip resolved newer libraries, among them TensorFlow 2.21, and the CPU may be
another model: the cause is not pinned down). Session 12 (2026-12-04, the same command on a
fresh clone, 2 cores of an AMD EPYC running 1.8x slower than session 11's: 11.8 against 21.3
images/s): 17.26 dB, SSIM 0.460, steps 0 -> 300 in 2m05s. The samples show flat regions in
the style image's colours with the photo's layout, with speckle at some boundaries and
without the answer's dark outlines. The gain comes from the colour attention itself:
untrained, the same generator scores 17.75 dB, and training with the seed's losses loses some
of it (17.38 dB at step 150; experiments/seed_objective/README.md).
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
  c.model.discriminator.ndf = 32
  c.loss.content_type = "pixel"  # the seed's ||G(C, S) - C||^2
  c.loss.w_style = 1.0
  c.loss.style_layers = ("relu1_1", "relu2_1")
  c.loss.style_layer_weights = (1.0, 1.0)
  c.loss.w_adv = 0.0
  return c
