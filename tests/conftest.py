"""Test set-up: 8 fake CPU devices (set before jax is imported) and cheap compiles.

Compiled graphs are shared through JAX's persistent compilation cache: many tests (and the CLI
subprocesses they start, which inherit the environment) compile the same tiny configs' steps.
The cache is keyed by the HLO, the compile options and the versions, so a hit is the same
executable; it lives in the temp dir, shared by the xdist workers and kept between runs (LRU,
at most 2 GB).
"""

import os
import tempfile

os.environ["XLA_FLAGS"] = (
  os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8"
)
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault(
  "JAX_COMPILATION_CACHE_DIR",
  os.path.join(tempfile.gettempdir(), f"ganstyle_jax_tests_jax_cache_{os.getuid()}"),
)
os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0.2")
os.environ.setdefault("JAX_COMPILATION_CACHE_MAX_SIZE", str(2 << 30))

import jax  # noqa: E402  (must come after XLA_FLAGS)

jax.config.update("jax_platforms", "cpu")
# Test graphs are compiled once and run a handful of times: compile time dominates.
jax.config.update("jax_disable_most_optimizations", True)

import sys  # noqa: E402

# configs/ (configs/tiny.py) is imported as a namespace package from the repository root.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
