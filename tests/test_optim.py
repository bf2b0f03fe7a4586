"""Learning-rate schedules and optimizers of config.optim: each schedule's values, clipping."""

import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganstyle_jax import optim
from ganstyle_jax.config_base import base_config
from ganstyle_jax.errors import UserError


def cfg(**kw):
  c = base_config().optim.g
  c.update(kw)
  return c


def values(schedule, steps):
  return np.array([float(schedule(s)) for s in steps])


def test_constant():
  np.testing.assert_allclose(values(optim.learning_rate(cfg(lr=3e-4), 100), [0, 50, 99]), 3e-4)


def test_linear_is_constant_then_decays_to_zero():
  s = optim.learning_rate(cfg(lr=2e-4, schedule="linear", decay_start_step=60), 100)
  np.testing.assert_allclose(
    values(s, [0, 30, 60, 80, 100]), [2e-4, 2e-4, 2e-4, 1e-4, 0.0], atol=1e-12
  )


def test_cosine_with_warmup():
  s = optim.learning_rate(cfg(lr=1.0, schedule="cosine", warmup_steps=10), 110)
  np.testing.assert_allclose(values(s, [0, 5, 10, 60, 110]), [0.0, 0.5, 1.0, 0.5, 0.0], atol=1e-6)


def test_warmup_before_constant():
  s = optim.learning_rate(cfg(lr=1.0, warmup_steps=4), 100)
  np.testing.assert_allclose(values(s, [0, 2, 4, 50]), [0.0, 0.5, 1.0, 1.0])


def test_bad_schedules_are_user_errors():
  with pytest.raises(UserError, match="unknown optim schedule 'step'"):
    optim.learning_rate(cfg(schedule="step"), 100)
  with pytest.raises(UserError, match="decay_start_step=100 must lie in"):
    optim.learning_rate(cfg(schedule="linear", decay_start_step=100), 100)


def test_adam_with_and_without_clipping_equals_optax_chain():
  params = {"w": jnp.zeros(3)}
  grads = {"w": jnp.array([300.0, -400.0, 0.0])}  # global norm 500
  # Two steps of each against optax's own chain (b1 0.5, b2 0.999 from config_base).
  for clip in (0.0, 1.0):
    tx = optim.optimizer(cfg(lr=0.1, grad_clip_norm=clip), 10)
    ref = optax.adam(0.1, b1=0.5, b2=0.999)
    if clip:
      ref = optax.chain(optax.clip_by_global_norm(clip), ref)
    state, ref_state = tx.init(params), ref.init(params)
    for g in (grads, {"w": jnp.array([1.0, 1.0, 1.0])}):
      up, state = tx.update(g, state, params)
      ref_up, ref_state = ref.update(g, ref_state, params)
      np.testing.assert_allclose(up["w"], ref_up["w"], rtol=1e-6)
  # The second updates differ with and without clipping (Adam's first is lr * sign(g)).
  assert not np.allclose(
    updates_of(cfg(lr=0.1, grad_clip_norm=1.0), params, grads),
    updates_of(cfg(lr=0.1), params, grads),
  )


def updates_of(c, params, grads):
  tx = optim.optimizer(c, 10)
  state = tx.init(params)
  _, state = tx.update(grads, state, params)
  up, _ = tx.update({"w": jnp.ones(3)}, state, params)
  return np.asarray(up["w"])
