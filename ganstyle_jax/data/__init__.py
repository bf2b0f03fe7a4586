"""Datasets embedded in ganstyle_jax (`synthetic`: procedural photos and their known painting)."""

from ganstyle_jax import console

# TF enters the package here (tf.data), without its start-up notices on stderr.
console.import_tensorflow()
