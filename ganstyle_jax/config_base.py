"""Every config key, with its default and meaning; config files start from `base_config()`.

Config files (configs/*.py) call `base_config(model_name)` and override what they change, so
each run's config holds every key below and `--config.KEY=VALUE` typos fail at once
(configs are loaded locked). Keys are the contract in shared/DESIGN.md.
"""

from __future__ import annotations

import ml_collections


def _optim(lr: float = 2e-4) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(
    dict(
      lr=lr,  # peak learning rate of Adam
      b1=0.5,  # Adam beta1 (GAN default 0.5)
      b2=0.999,  # Adam beta2
      schedule="constant",  # 'constant' | 'linear' (constant, then linear to 0) | 'cosine'
      decay_start_step=0,  # 'linear': step at which the linear decay to 0 starts
      warmup_steps=0,  # linear warm-up from 0 (any schedule)
      grad_clip_norm=0.0,  # clip the global gradient norm to this; 0 = off
      # 'REGEX=SCALE,...': lr x SCALE for parameters whose path ('colour/query_filter',
      # 'decoder/conv0/conv/kernel') the regex matches, first rule wins; '' = none
      lr_scales="",
    )
  )


def base_config(model_name: str = "adain_gan") -> ml_collections.ConfigDict:
  """All keys with defaults for `model_name`, a name in families.FAMILIES."""
  c = ml_collections.ConfigDict()
  c.seed = 0  # seeds init, data order, augmentation and the image pool
  c.total_steps = 1000  # train steps (one step = one D and one G update)
  c.log_every_steps = 50  # metrics to TensorBoard/console (the only host syncs)
  c.checkpoint_every_steps = 500  # orbax checkpoint cadence (also saved at the end)
  c.sample_every_steps = 500  # sample grid samples/step_XXXXXX.png; 0 = never
  c.eval_every_steps = 500  # held-out losses and known-answer metrics; 0 = never
  c.keep_checkpoints = 3  # checkpoints kept on disk
  c.parallelism = "pmap"  # 'pmap' (axis 'batch') | 'jit' (1-D mesh, NamedSharding)
  c.compute_dtype = "float32"  # 'float32' | 'bfloat16' (networks only; params stay f32)
  c.num_sample_images = 4  # rows of the sample grid
  c.num_eval_images = 16  # held-out images per evaluation

  # Data source strings (data.content / style / real):
  #   tfds:NAME[:SPLIT]      a TFDS image dataset, e.g. tfds:cycle_gan/monet2photo:trainB
  #   folder:PATH            images under PATH, recursive (local or gs://); a paired family
  #                          (pix2pix) pairs folder:A (content) and folder:B (style) by file
  #                          stem (relative path without extension)
  #   synthetic:photo        the embedded procedural photos (data/synthetic.py)
  #   synthetic:painting     the embedded paintings, in data.synthetic_styles train styles;
  #                          held-out (test) paintings in styles never seen in training
  #   synthetic:known_answer not set here: the batch key a family derives when it trains on the
  #                          known answer (adain_gan's loss.w_supervised): painting_k(content),
  #                          k = the style image's style; needs synthetic:photo content and
  #                          synthetic:painting style. Paired synthetic data (pix2pix with
  #                          synthetic:photo + synthetic:painting) is (photo i, painting of
  #                          photo i in style i % N); held out: test pair i in style 1000 + i.
  #   synthetic:same_style   data.real only (adain_gan, loss.adv_condition='style'): synthetic
  #                          photos drawn independently of the content (own shuffle; held out:
  #                          the next scene's), each painted in the style of the style image it
  #                          is paired with (real pairs of one style for D)
  c.data = ml_collections.ConfigDict(
    dict(
      content="synthetic:photo",  # adain_gan content source; cyclegan domain A
      style="synthetic:painting",  # adain_gan style source; cyclegan domain B
      real="synthetic:painting",  # adain_gan: real style-domain images for D
      image_size=64,  # training crop size
      load_size=64,  # shorter side resized to this before cropping
      global_batch_size=8,  # over all devices and processes
      shuffle_buffer=1024,  # tf.data shuffle buffer (elements are file bytes)
      prefetch_batches=2,  # batches decoded and sent to the devices ahead; 0 = off
      data_dir="",  # TFDS data_dir; '' = TFDS default (synthetic: cache dir)
      max_image_pixels=8192 * 8192,  # larger images are refused (training skips them, with
      # a warning; stylize reports an error)
      synthetic_size=64,  # native render size of synthetic scenes
      synthetic_train_size=2000,  # synthetic scenes per domain (train split)
      synthetic_test_size=64,  # held-out synthetic scenes (paired test split)
      synthetic_styles=1,  # painting styles of the synthetic training paintings:
      # 1 = the single-style benchmark (style 0, as before);
      # N > 1 = the multi-style benchmark: train painting i in
      # style i % N, held-out pair i = (photo i, another scene
      # in unseen style 1000 + i, known answer painting_k(photo
      # i)). Style-conditioned (adain_gan) and paired (pix2pix)
      # families; cyclegan keeps the single-style data.
    )
  )

  c.model = ml_collections.ConfigDict(
    dict(
      name=model_name,
      ema_decay=0.0,  # EMA of generator params; 0 = off
      generator=dict(
        encoder_layer="relu4_1",  # adain_gan: VGG19 layer the encoder stops at
        transfer="adain",  # adain_gan: 'adain' (style mean/std) | 'attention' (the style's
        # features by content-to-style attention, a soft style swap) | 'colour' (each pixel takes
        # the style image's nearest colours by attention; the decoder adds shading and outlines)
        outlines=False,  # adain_gan, transfer 'colour': a learned outline module darkens
        # pixels where the photo's luminance changes sharply (starting at half brightness)
        smooth_query=False,  # adain_gan, transfer 'colour': the colour pick's query filter
        # starts as a 3x3 smoothing of the photo, not the identity (denoise, then quantise)
        ngf=64,  # cyclegan, pix2pix: generator width
        n_blocks=9,  # cyclegan: residual blocks (9 at 256 px, 6 at 128)
        residual=False,  # cyclegan: G = tanh(atanh(x) + net(x)), starting as the identity
        scan_blocks=False,  # cyclegan: the residual blocks as one lax.scan (same function and
        # parameters; compiles in ~30% less time, but CPU steps at 128 px ran 7-19% slower; on
        # the CPU only float32 blocks of >= 64 channels (Winograd's) are scanned)
        num_downs=8,  # pix2pix: U-Net levels (8 = unet_256; images % 2**N == 0)
        use_dropout=True,  # pix2pix: dropout 0.5 in the U-Net's inner up levels
      ),
      discriminator=dict(
        ndf=64,  # PatchGAN width
        n_layers=3,  # 3 = 70x70 receptive field
        norm="instance",  # 'instance' | 'none'
        spectral_norm=False,  # spectral normalisation of D's kernels
        num_scales=1,  # >1: multi-scale PatchGAN
      ),
      vgg=dict(
        weights="imagenet",  # 'imagenet' | 'random' | path to .h5/.npz/.safetensors;
        # adain_gan's losses and every model's eval metrics
      ),
    )
  )

  c.loss = ml_collections.ConfigDict(
    dict(
      adv_type="lsgan",  # 'nonsat' (BCE, the seed's) | 'lsgan' | 'hinge'
      w_adv=1.0,  # weight of G's adversarial loss
      adv_condition="none",  # adain_gan: what D judges: 'none' (the image) | 'style' ((image,
      # style image) pairs, concatenated on channels: does the image look like a painting in
      # that style; needs data.real=synthetic:same_style, paintings in each style image's style)
      w_content=1.0,  # adain_gan content loss weight
      w_style=10.0,  # adain_gan style loss weight (alpha in the seed)
      w_cycle=10.0,  # cyclegan cycle-consistency weight (lambda)
      w_identity=5.0,  # cyclegan identity weight (0.5 * w_cycle, as the reference)
      w_tv=0.0,  # total variation of G's output
      w_supervised=0.0,  # L1 to the known target: pix2pix's paired L1 (100 in
      # its papers); adain_gan: to the synthetic known answer
      # (the supervised ceiling; synthetic data only)
      w_temporal=0.0,  # adain_gan: ReReVST's compound regularisation, mean
      # (G(W(C) + noise) - W(G(C)))^2 for a random smooth warp W
      # (ops/warping.py); 0 = off (one G pass fewer per step)
      temporal_max_shift=4.0,  # w_temporal: largest displacement of W, in pixels
      temporal_noise=0.02,  # w_temporal: std of the Gaussian noise added to W(C)
      # (images in [-1, 1]: 0.02 is 2.5 grey levels)
      r1_gamma=0.0,  # R1 penalty weight on D at real images; 0 = off. The gradient is
      # taken over all of D's input: with pix2pix's pairs or adv_condition='style' the
      # conditioning image's channels too
      style_type="mean_std",  # 'mean_std' (AdaIN) | 'gram' (Gatys)
      content_type="perceptual",  # 'perceptual' (VGG encoder layer vs AdaIN target) | 'pixel'
      style_layers=("relu1_1", "relu2_1", "relu3_1", "relu4_1"),
      style_layer_weights=(1.0, 1.0, 1.0, 1.0),
      pool_size=50,  # cyclegan image pool (0 = off)
    )
  )

  c.optim = ml_collections.ConfigDict(dict(g=_optim(), d=_optim()))
  return c
