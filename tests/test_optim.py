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


def test_lr_scales_equal_adam_at_the_scaled_rate_per_group():
  params = {"colour": {"q": jnp.zeros(2)}, "decoder": {"conv0": {"kernel": jnp.zeros(3)}}}
  grads_seq = [
    {"colour": {"q": jnp.array([1.0, -2.0])}, "decoder": {"conv0": {"kernel": jnp.ones(3)}}},
    {"colour": {"q": jnp.array([0.5, 3.0])}, "decoder": {"conv0": {"kernel": -jnp.ones(3)}}},
  ]
  tx = optim.optimizer(cfg(lr=0.1, lr_scales="^col=25, conv0/kernel=0.5"), 10)
  # The reference: one Adam per group (optax.multi_transform) at lr 2.5 and 0.05.
  labels = {"colour": {"q": "fast"}, "decoder": {"conv0": {"kernel": "slow"}}}
  ref = optax.multi_transform(
    {"fast": optax.adam(2.5, b1=0.5, b2=0.999), "slow": optax.adam(0.05, b1=0.5, b2=0.999)},
    labels,
  )
  state, ref_state = tx.init(params), ref.init(params)
  for g in grads_seq:
    up, state = tx.update(g, state, params)
    ref_up, ref_state = ref.update(g, ref_state, params)
    np.testing.assert_allclose(up["colour"]["q"], ref_up["colour"]["q"], rtol=1e-6)
    np.testing.assert_allclose(
      up["decoder"]["conv0"]["kernel"], ref_up["decoder"]["conv0"]["kernel"], rtol=1e-6
    )


def test_lr_scales_first_matching_rule_wins_and_others_keep_the_rate():
  params = {"a": {"w": jnp.zeros(1)}, "b": {"w": jnp.zeros(1)}}
  grads = {"a": {"w": jnp.ones(1)}, "b": {"w": jnp.ones(1)}}
  tx = optim.optimizer(cfg(lr=0.1, lr_scales="a/w=3,w=2"), 10)
  up, _ = tx.update(grads, tx.init(params), params)
  # Adam's first step is lr * sign(g): a gets 3x, b the second rule's 2x.
  np.testing.assert_allclose([up["a"]["w"][0], up["b"]["w"][0]], [-0.3, -0.2], rtol=1e-5)
  plain = optim.optimizer(cfg(lr=0.1, lr_scales="a/w=3"), 10)
  up, _ = plain.update(grads, plain.init(params), params)
  np.testing.assert_allclose([up["a"]["w"][0], up["b"]["w"][0]], [-0.3, -0.1], rtol=1e-5)


@pytest.mark.parametrize("spec", ["colour", "colour=", "=2", "colour=-1", "colour=x", "(=2"])
def test_malformed_lr_scales_are_user_errors(spec):
  with pytest.raises(UserError, match="malformed: write REGEX=SCALE"):
    optim.optimizer(cfg(lr_scales=spec), 10)


def test_an_lr_scales_pattern_that_matches_nothing_is_a_user_error():
  tx = optim.optimizer(cfg(lr_scales="color=25"), 10)
  with pytest.raises(UserError, match="'color' matches no parameter.*colour/q"):
    tx.init({"colour": {"q": jnp.zeros(2)}})
