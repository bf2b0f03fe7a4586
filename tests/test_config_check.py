"""Config values are range-checked before anything is written; a broken config file is one line."""

import os

import pytest

from configs.tiny import tiny_config
import helpers
from ganstyle_jax import config_check, train

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def train_cli(*args, cwd=REPO):
  return helpers.run_module("main", *args, cwd=cwd)


BAD = [
  ("total_steps", 0, "an integer >= 1"),
  ("log_every_steps", -1, "an integer >= 0"),
  ("keep_checkpoints", 0, "an integer >= 1"),
  ("optim.g.lr", -1e-4, "a number > 0"),
  ("optim.d.lr", 0.0, "a number > 0"),
  ("optim.g.b1", 1.0, "[0, 1)"),
  ("optim.d.b2", -0.1, "[0, 1)"),
  ("model.ema_decay", 1.0, "[0, 1)"),
  ("loss.w_style", -1.0, "a number >= 0"),
  ("loss.w_adv", float("nan"), "a number >= 0"),
  ("data.image_size", 0, "an integer >= 1"),
  ("data.load_size", 16, "data.image_size=32"),
  ("data.global_batch_size", 0, "an integer >= 1"),
  ("num_sample_images", 9, "num_eval_images=8"),
  ("parallelism", "pmapp", "pmap, jit"),
  ("optim.g.schedule", "linear", "[0, total_steps=4)"),  # with decay_start_step=4 below
  ("loss.w_temporal", -1.0, "a number >= 0"),
  ("loss.temporal_noise", -0.1, "a number >= 0"),
  ("loss.adv_condition", "styel", "none, style"),
]


@pytest.mark.parametrize("key,value,valid", BAD, ids=[b[0] for b in BAD])
def test_bad_value_is_one_line_naming_key_value_and_range(key, value, valid):
  config = tiny_config("adain_gan")
  if key == "optim.g.schedule":
    config.optim.g.decay_start_step = 4
  *parents, leaf = key.split(".")
  node = config
  for p in parents:
    node = node[p]
  node[leaf] = value
  with pytest.raises(config_check.ConfigValueError) as e:
    config_check.validate(config)
  msg = str(e.value)
  assert "\n" not in msg and valid in msg, msg
  shown = "optim.g.decay_start_step" if key == "optim.g.schedule" else key
  assert msg.startswith(f"config.{shown}="), msg


@pytest.mark.parametrize("model", ["adain_gan", "cyclegan"])
def test_shipped_configs_pass(model):
  config_check.validate(tiny_config(model))


def test_temporal_regulariser_range_and_family():
  config = tiny_config("adain_gan")
  config.loss.w_temporal = 1.0
  config_check.validate(config)
  config.loss.temporal_max_shift = 8.0  # a quarter of the 32 px crop
  with pytest.raises(config_check.ConfigValueError, match=r"\[0, data.image_size / 4 = 8\)"):
    config_check.validate(config)
  config = tiny_config("cyclegan")
  config.loss.w_temporal = 1.0
  with pytest.raises(config_check.ConfigValueError) as e:
    config_check.validate(config)
  assert str(e.value) == (
    "config.loss.w_temporal=1.0 is out of range: use 0 for cyclegan (the temporal "
    "regulariser is implemented for adain_gan)"
  )


@pytest.mark.parametrize("model", ["cyclegan", "pix2pix"])
def test_style_conditioned_d_is_adain_gans(model):
  config = tiny_config("adain_gan")
  config.loss.adv_condition = "style"
  config_check.validate(config)
  config = tiny_config(model)
  config.loss.adv_condition = "style"
  with pytest.raises(config_check.ConfigValueError) as e:
    config_check.validate(config)
  assert str(e.value) == (
    f"config.loss.adv_condition='style' is out of range: use 'none' for {model} (a "
    "style-conditioned D is adain_gan's: it judges (image, style image) pairs)"
  )


@pytest.mark.parametrize("model", ["adain_gan", "pix2pix"])
@pytest.mark.parametrize(
  "key, what",
  [
    ("residual", "the residual output is"),
    ("scan_blocks", "the scanned residual blocks are"),
  ],
)
def test_resnet_generator_options_are_cyclegans(model, key, what):
  config = tiny_config("cyclegan")
  config.model.generator[key] = True
  config_check.validate(config)
  config = tiny_config(model)
  config.model.generator[key] = True
  with pytest.raises(config_check.ConfigValueError) as e:
    config_check.validate(config)
  assert str(e.value) == (
    f"config.model.generator.{key}=True is out of range: use False for {model} ({what} "
    "cyclegan's ResNet generator's)"
  )


@pytest.mark.parametrize("model,transfer", [("adain_gan", "adain"), ("cyclegan", "colour")])
@pytest.mark.parametrize(
  "key,what",
  [
    ("outlines", "the outline module darkens the colour generator's output"),
    ("smooth_query", "the query filter is the colour generator's"),
  ],
)
def test_outlines_and_smooth_query_are_the_colour_generators(model, transfer, key, what):
  config = tiny_config("adain_gan")
  config.model.generator.transfer = "colour"
  config.model.generator[key] = True
  config_check.validate(config)
  config = tiny_config(model)
  config.model.generator.transfer = transfer
  config.model.generator[key] = True
  with pytest.raises(config_check.ConfigValueError) as e:
    config_check.validate(config)
  assert str(e.value) == (
    f"config.model.generator.{key}=True is out of range: use False unless "
    f"model.name='adain_gan' with model.generator.transfer='colour' ({what})"
  )


def test_train_checks_before_writing(tmp_path):
  config = tiny_config("adain_gan")
  config.keep_checkpoints = 0
  with pytest.raises(config_check.ConfigValueError, match="keep_checkpoints=0"):
    train.train_and_evaluate(config, str(tmp_path / "run"))
  assert not os.path.exists(tmp_path / "run")


def test_cli_bad_value_and_broken_config_file_are_one_line(tmp_path):
  proc = train_cli(
    "--config=configs/tiny.py", f"--workdir={tmp_path / 'run'}", "--config.optim.g.lr=-0.001"
  )
  assert proc.returncode == 2, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1] == (
    "error: config.optim.g.lr=-0.001 is out of range: use a number > 0"
  )
  assert not os.path.exists(tmp_path / "run")
  broken = tmp_path / "broken.py"
  broken.write_text("from configs.tiny import tiny_config\n\ndef get_config(:\n  pass\n")
  proc = train_cli(f"--config={broken}", f"--workdir={tmp_path / 'run'}")
  assert proc.returncode != 0
  assert proc.stderr.strip().splitlines()[-1] == (
    f"error: the config file failed to load: {broken}, line 3: SyntaxError: invalid syntax"
  )
  failing = tmp_path / "failing.py"
  failing.write_text("def get_config():\n  c = {}\n  return c['missing']\n")
  proc = train_cli(f"--config={failing}", f"--workdir={tmp_path / 'run'}")
  assert proc.stderr.strip().splitlines()[-1] == (
    f"error: the config file failed to load: {failing}, line 3: KeyError: 'missing'"
  )
  assert "Traceback" not in proc.stderr
  assert not os.path.exists(tmp_path / "run")


@pytest.mark.parametrize(
  "args,line",
  [
    (
      ["--config=configs/tiny.py:cyclegan", "--config.model.generator.n_blcks=2"],
      "error: --config.model.generator.n_blcks: config.model.generator has no key 'n_blcks'; "
      "did you mean 'n_blocks'?",
    ),
    (  # no close key: the keys there are
      ["--config=configs/tiny.py", "--config.optim.lr=1e-3"],
      "error: --config.optim.lr: config.optim has no key 'lr'; its keys: d, g",
    ),
    (["--config=configs/nope.py"], "error: --config=configs/nope.py: no such config file"),
  ],
)
def test_cli_unknown_key_or_config_file_is_one_line_saying_what_exists(args, line, tmp_path):
  proc = train_cli(*args, f"--workdir={tmp_path / 'run'}")
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert proc.stderr.strip().splitlines()[-1] == line
  assert not os.path.exists(tmp_path / "run")
