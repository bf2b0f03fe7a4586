"""Test helpers shared by several test files (and the multi-process worker)."""

import dataclasses
import os
import subprocess
import sys

import optax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def run_module(module: str, *args, cwd=REPO, env=None) -> subprocess.CompletedProcess:
  """Runs `python -m ganstyle_jax.MODULE ARGS...` as a user would; text output captured."""
  return subprocess.run(
    [sys.executable, "-m", f"ganstyle_jax.{module}", *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=300,
    env=env,
  )


def with_sgd(build_setup):
  """Wraps build_setup to use SGD: Adam turns float noise in near-zero gradients (biases
  before instance norm) into lr-sized steps; SGD keeps updates proportional to the gradients,
  so runs that differ only in reduction order can be compared."""
  return lambda config: dataclasses.replace(
    build_setup(config), g_tx=optax.sgd(1e-4), d_tx=optax.sgd(1e-4)
  )
