"""Test helpers shared by several test files (and the multi-process worker)."""

import dataclasses

import optax


def with_sgd(build_setup):
  """Wraps build_setup to use SGD: Adam turns float noise in near-zero gradients (biases
  before instance norm) into lr-sized steps; SGD keeps updates proportional to the gradients,
  so runs that differ only in reduction order can be compared."""
  return lambda config: dataclasses.replace(
    build_setup(config), g_tx=optax.sgd(1e-4), d_tx=optax.sgd(1e-4)
  )
