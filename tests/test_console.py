"""The console of the CLIs (ganstyle_jax/console.py): plain progress lines in a log file, the
short form of warnings, the hidden library records, and the training summary's evaluation."""

import io
import logging
import os
import subprocess
import sys

import pytest

import helpers

from ganstyle_jax import console, evaluate


def test_progress_in_a_log_file_is_one_plain_line_per_log_step():
  stream = io.StringIO()  # not a terminal: no bar
  bar = console.StepProgress(0, 600, stream=stream)
  for step in range(1, 601):
    if step % 50 == 0:
      bar.log(step, {"g/loss": 0.5, "d/loss": 1.25, "g/style": 3.0}, 11.34 if step > 200 else None)
    else:
      bar.step(step)
  bar.close()
  text = stream.getvalue()
  assert "\r" not in text and len(text.splitlines()) == 12
  assert text.splitlines()[-1].startswith("step 600/600 ")


def test_progress_lines(capsys):
  bar = console.StepProgress(100, 300)
  bar.log(150, {"g/loss": 0.5, "d/loss": 1.25})
  bar.log(200, {"g/loss": 0.25, "d/loss": 1.0}, psnr=11.345)
  bar.log(250, {"g/loss": 0.25})  # the last PSNR stays
  err = capsys.readouterr().err
  lines = err.splitlines()
  assert len(lines) == 3 and "\r" not in err
  assert lines[0].startswith("step 150/300 ") and "g/loss 0.500  d/loss 1.250" in lines[0]
  assert "ETA" in lines[1] and lines[1].endswith("PSNR 11.35 dB")
  assert lines[2].endswith("g/loss 0.250  PSNR 11.35 dB")
  assert list(console.progress([1, 2, 3], desc="render", unit="batch")) == [1, 2, 3]
  assert capsys.readouterr().err.startswith("render: 3/3 batch in ")


def record(level, msg, pathname):
  return logging.LogRecord("absl", level, pathname, 1, msg, (), None)


def test_warnings_are_short_and_harmless_library_ones_hidden():
  handler = console._ConsoleHandler()
  ours = record(logging.WARNING, "VGG19 weights 'random'", "/x/ganstyle_jax/models/vgg.py")
  orbax = record(logging.WARNING, "slow save", "/v/lib/python3.11/site-packages/orbax/x.py")
  assert handler.format(ours) == "warning: VGG19 weights 'random'"
  assert handler.format(orbax) == "warning (orbax): slow save"
  tfds = "/v/lib/python3.11/site-packages/tensorflow_datasets/core/dataset_builder.py"
  assert not handler.filter(record(logging.WARNING, "Using custom data configuration: x", tfds))
  assert handler.filter(record(logging.WARNING, "something else", tfds))
  assert handler.filter(ours) and handler.level == logging.WARNING  # INFO records: hidden


def test_summary_names_psnr_against_every_baseline():
  values = {
    "psnr": 11.34,
    "psnr_identity": 11.18,
    "psnr_colour_transfer": 10.86,
    "psnr_style_blind": 13.69,
    "ssim": 0.065,
    "ssim_identity": 0.097,
  }
  lines = evaluate.summary_lines(values, 600, 64)
  assert lines[0] == "Evaluation at step 600 (64 held-out images, known answer):"
  assert lines[1] == (
    "  PSNR 11.34 dB  vs identity 11.18 (+0.16), colour transfer 10.86 (+0.48), "
    "style-blind 13.69 (-2.35)"
  )
  assert lines[2] == "  SSIM 0.065  vs identity 0.097 (-0.032)"
  lines = evaluate.summary_lines({"swd": 2.0, "swd_identity": 3.0}, 4, 8)
  assert lines[1] == "  swd 2 (identity 3)"


@pytest.mark.parametrize("tool", ["main", "stylize", "evaluate", "export", "benchmark", "app"])
def test_a_flag_error_is_one_line_without_library_notices(tool):
  """Every command-line tool: an unknown flag is one `error:` line on stderr, and nothing else
  (TF's start-up notices from importing the data package included)."""
  proc = helpers.run_module(tool, "--no_such_flag=1")
  lines = proc.stderr.strip().splitlines()
  assert proc.returncode == 1, proc.stderr[-2000:]
  assert lines[0].startswith("error: Unknown command line flag 'no_such_flag'"), lines
  assert len(lines) == (2 if tool == "main" else 1), lines  # main adds its usage line


@pytest.mark.parametrize(
  "script,module,flag",
  [("ganstyle-train", "main", "--workdir"), ("ganstyle-stylize", "stylize", "--content")],
)
def test_console_script_help_lists_the_tools_flags(script, module, flag):
  """`ganstyle-stylize --helpshort` (the entry point pip writes) says what `python -m
  ganstyle_jax.stylize --helpshort` does: the tool's docstring and its flags. absl describes
  `__main__`, which for a console script is pip's wrapper (no docstring, no flags)."""
  path = os.path.join(os.path.dirname(sys.executable), script)
  if not os.path.exists(path):
    pytest.skip(f"{script} is not installed (pip install -e .)")
  by_script = subprocess.run([path, "--helpshort"], capture_output=True, text=True, timeout=120)
  by_module = helpers.run_module(module, "--helpshort")
  assert f"  {flag}:" in by_script.stdout + by_script.stderr
  assert by_script.stdout.splitlines()[0] == by_module.stdout.splitlines()[0]


def test_models_families_stylize_and_benchmark_start_without_tensorflow():
  """TF (the input pipeline's) is imported by the data sources alone: the networks, the
  families, stylizing and the benchmarks start without it (seconds saved at every start, and
  the benchmarks run where TF is not installed)."""
  code = (
    "import sys; import ganstyle_jax.families, ganstyle_jax.stylize, ganstyle_jax.benchmark; "
    "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', "
    "'tensorflow_datasets')))"
  )
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert proc.stdout.strip() == "[]", proc.stdout[-500:]
  code = "import sys; import ganstyle_jax.data.sources; print('tensorflow' in sys.modules)"
  proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
  assert proc.stdout.strip() == "True"
