"""Every config file in configs/ and experiments/ loads, holds every key, and builds."""

import importlib.util
import pathlib

import jax
import pytest

from ganstyle_jax import build, families
from ganstyle_jax.config_base import base_config

REPO = pathlib.Path(__file__).resolve().parent.parent
CONFIG_FILES = sorted(
  p
  for p in [*REPO.glob("configs/*.py"), *REPO.glob("experiments/**/*.py")]
  if "def get_config(" in p.read_text()
)


def load_config(path: pathlib.Path):
  spec = importlib.util.spec_from_file_location(f"config_{path.stem}", path)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  return module.get_config()


def keys(tree, prefix=""):
  out = set()
  for k, v in tree.items():
    out |= keys(v, f"{prefix}{k}.") if hasattr(v, "items") else {prefix + k}
  return out


def test_config_files_are_found():
  names = {p.relative_to(REPO).as_posix() for p in CONFIG_FILES}
  assert {"configs/demo.py", "configs/tiny.py", "configs/cyclegan.py"} <= names


@pytest.mark.parametrize("path", CONFIG_FILES, ids=lambda p: p.relative_to(REPO).as_posix())
def test_config_loads_and_builds(path):
  config = load_config(path)
  assert keys(config) == keys(base_config(config.model.name)), "keys differ from config_base"
  family = families.get(config.model.name)
  assert all(isinstance(v, str) and v for v in family.batch_keys(config).values())
  setup = build.build_setup(config)
  state = jax.eval_shape(
    lambda: build.init_state(setup, jax.random.key(config.seed), config.data.image_size)
  )
  assert jax.tree.leaves(state.g_params) and jax.tree.leaves(state.d_params)
