"""Test set-up: 8 fake CPU devices (set before jax is imported) and cheap compiles."""

import os

os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import jax  # noqa: E402  (must come after XLA_FLAGS)

jax.config.update("jax_platforms", "cpu")
# Test graphs are compiled once and run a handful of times: compile time dominates.
jax.config.update("jax_disable_most_optimizations", True)

import sys  # noqa: E402

# configs/ (configs/tiny.py) is imported as a namespace package from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
