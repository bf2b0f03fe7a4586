"""TensorFlow and TFDS for the data package: imported without TF's start-up notices
(`console.import_tensorflow`), and kept off the accelerators, which belong to JAX."""

from ganstyle_jax import console

console.import_tensorflow()

import tensorflow as tf  # noqa: E402  pylint: disable=g-import-not-at-top
import tensorflow_datasets as tfds  # noqa: E402  pylint: disable=g-import-not-at-top

for _kind in ("GPU", "TPU"):
  try:
    tf.config.set_visible_devices([], _kind)
  except (RuntimeError, ValueError):  # already initialised, or no such device type
    pass

__all__ = ["tf", "tfds"]
