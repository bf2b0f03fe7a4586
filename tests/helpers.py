"""Test helpers shared by several test files (and the multi-process worker)."""

import dataclasses
import os
import subprocess
import sys

import optax

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# CLI subprocesses compile their graphs once and run them a few times, as the tests do in
# process (conftest): XLA's optimisations cost more than they save there (the benchmark CLI
# at 64 px: 44 s -> 22 s, measured 2026-12-02).
CHEAP_COMPILES = {"JAX_DISABLE_MOST_OPTIMIZATIONS": "true"}
# For subprocesses that may die or fail mid-write (kill -9, a file size limit): JAX writes cache
# entries in place, and a cut entry would stay in the shared cache (conftest).
NO_COMPILATION_CACHE = {"JAX_ENABLE_COMPILATION_CACHE": "false"}


def run_module(module: str, *args, cwd=REPO, env=None) -> subprocess.CompletedProcess:
  """Runs `python -m ganstyle_jax.MODULE ARGS...` as a user would; text output captured."""
  return subprocess.run(
    [sys.executable, "-m", f"ganstyle_jax.{module}", *args],
    cwd=cwd,
    capture_output=True,
    text=True,
    timeout=300,
    env={**CHEAP_COMPILES, **(os.environ if env is None else env)},
  )


def with_sgd(build_setup, lr: float = 1e-4):
  """Wraps build_setup to use SGD: Adam turns float noise in near-zero gradients (biases
  before instance norm) into lr-sized steps; SGD keeps updates proportional to the gradients,
  so runs that differ only in reduction order can be compared."""
  return lambda config: dataclasses.replace(
    build_setup(config), g_tx=optax.sgd(lr), d_tx=optax.sgd(lr)
  )
