"""Train steps on 8 fake CPU devices: pmap == jit == one device; VGG untouched; no recompiles."""

import dataclasses
import functools

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from ganstyle_jax import build, families, parallel, steps
from ganstyle_jax.models import vgg as vgg_lib
from configs.tiny import tiny_config


def batch_for(model, n=8, size=32, seed=0):
  rng = np.random.default_rng(seed)
  keys = families.get(model).batch_keys(tiny_config(model))
  return {k: rng.uniform(-1, 1, (n, size, size, 3)).astype(np.float32) for k in keys}


def run_steps(
  model, mode, devices, n_steps=3, dtype="float32", traces=None, sgd=False, compile_ahead=False
):
  config = tiny_config(model)
  config.compute_dtype = dtype
  setup = build.build_setup(config)
  if sgd:
    # Adam turns float noise in near-zero gradients (biases before instance norm) into
    # lr-sized steps; SGD keeps updates proportional to the gradients being compared.
    setup = dataclasses.replace(setup, g_tx=optax.sgd(1e-3), d_tx=optax.sgd(1e-3))
  body = setup.family.train_step
  if traces is not None:
    inner = body

    def body(*args, **kw):
      traces.append(1)
      return inner(*args, **kw)

  step = parallel.make_step(functools.partial(body, setup=setup), mode, devices)
  state = build.init_state(setup, jax.random.key(0), 32)
  vgg = vgg_lib.load_params("random") if setup.family.needs_vgg else None
  vgg_before = jax.tree.map(np.array, vgg)
  state, vgg = step.place_replicated(state), step.place_replicated(vgg)
  key = step.place_replicated(jax.random.key(1))
  if compile_ahead:
    phases = step.compile(state, step.prepare_batch(batch_for(model)), vgg, key)
    assert phases["lower_s"] > 0 and phases["xla_compile_s"] > 0
  metrics = None
  for i in range(n_steps):
    state, metrics = step(state, step.prepare_batch(batch_for(model, seed=i)), vgg, key)
  if vgg is not None:
    jax.tree.map(np.testing.assert_array_equal, vgg_before, jax.device_get(vgg))
  return jax.device_get(state), jax.device_get(metrics)


@pytest.mark.parametrize("model", ["adain_gan", "cyclegan", "pix2pix"])
def test_pmap_jit_and_single_device_agree(model):
  traces = []
  s_pmap, m_pmap = run_steps(model, "pmap", jax.devices(), traces=traces, sgd=True)
  assert len(traces) == 1, "the step was traced more than once (recompiles)"
  traces = []
  s_jit, m_jit = run_steps(model, "jit", jax.devices(), traces=traces, sgd=True)
  assert len(traces) == 1, "the jit step was traced more than once (recompiles)"
  s_one, _ = run_steps(model, "jit", jax.devices()[:1], sgd=True)
  for k in m_pmap:
    np.testing.assert_allclose(m_pmap[k], m_jit[k], rtol=1e-4, err_msg=k)
  assert int(s_pmap.step) == int(s_jit.step) == 3
  init = build.init_state(build.build_setup(tiny_config(model)), jax.random.key(0), 32)
  # Params moved, and all three paths moved them the same way.
  moved = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), s_pmap.g_params, init.g_params)
  assert max(jax.tree.leaves(moved)) > 0
  for other in (s_jit, s_one):
    for a, b, a0 in (
      (s_pmap.g_params, other.g_params, init.g_params),
      (s_pmap.d_params, other.d_params, init.d_params),
    ):
      # Paths differ only by float summation order: their difference is tiny next to the
      # distance the params travelled in 3 steps.
      diff = max(jax.tree.leaves(jax.tree.map(lambda x, y: np.max(np.abs(x - y)), a, b)))
      travel = max(jax.tree.leaves(jax.tree.map(lambda x, y: np.max(np.abs(x - y)), a, a0)))
      assert diff < 1e-2 * travel, (diff, travel)
  d_moved = jax.tree.map(lambda a, b: float(np.max(np.abs(a - b))), s_pmap.d_params, init.d_params)
  assert max(jax.tree.leaves(d_moved)) > 0
  assert all(np.isfinite(v) for v in m_pmap.values())
  expected = {"g/loss", "d/loss", "g/grad_norm", "d/grad_norm", "g/adv"} | {
    "adain_gan": {"d/real_score", "d/fake_score", "g/content", "g/style"},
    "cyclegan": {"d/real_score_A", "d/fake_score_B", "g/cycle", "g/identity"},
    "pix2pix": {"d/real_score", "d/fake_score", "g/l1"},
  }[model]
  assert expected <= set(m_pmap)
  if model == "cyclegan":
    np.testing.assert_allclose(s_pmap.pool["A"], s_one.pool["A"], rtol=2e-4, atol=2e-5)
    assert int(s_pmap.pool_count) == min(3 * 8, 4)


def test_step_compiled_ahead_runs_without_tracing_again():
  """ParallelStep.compile (the benchmark's): the step is compiled before its first call, the
  calls run that program (one trace), and pmap and jit still agree."""
  results = {}
  for mode in ("pmap", "jit"):
    traces = []
    results[mode] = run_steps(
      "cyclegan", mode, jax.devices(), n_steps=2, traces=traces, sgd=True, compile_ahead=True
    )
    assert len(traces) == 1, mode
  (s_pmap, m_pmap), (s_jit, m_jit) = results["pmap"], results["jit"]
  for k in m_pmap:
    np.testing.assert_allclose(m_pmap[k], m_jit[k], rtol=1e-4, err_msg=k)
  jax.tree.map(
    lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6),
    s_pmap.g_params,
    s_jit.g_params,
  )


def test_same_seed_same_result():
  a, _ = run_steps("adain_gan", "jit", jax.devices(), n_steps=2)
  b, _ = run_steps("adain_gan", "jit", jax.devices(), n_steps=2)
  jax.tree.map(np.testing.assert_array_equal, a.g_params, b.g_params)


def test_bfloat16_compute_keeps_float32_state():
  state, metrics = run_steps("adain_gan", "pmap", jax.devices(), n_steps=2, dtype="bfloat16")
  assert all(x.dtype == jnp.float32 for x in jax.tree.leaves(state.g_params))
  assert all(
    x.dtype == jnp.float32
    for x in jax.tree.leaves(state.d_opt_state)
    if hasattr(x, "dtype") and x.ndim > 0
  )
  assert all(np.isfinite(v) for v in metrics.values())


def test_pool_query_fills_then_swaps():
  pool = jnp.zeros((2, 1, 1, 1))
  fakes = jnp.arange(1.0, 4.0).reshape(3, 1, 1, 1)
  pool, count, out = steps.pool_query(pool, jnp.int32(0), fakes, jax.random.key(0))
  assert int(count) == 2
  np.testing.assert_array_equal(out[:2].ravel(), [1.0, 2.0])  # filling: fakes pass through
  # Third image: returned itself, or swapped with a stored one that it replaces.
  if float(out[2, 0, 0, 0]) == 3.0:
    assert sorted(pool.ravel().tolist()) == [1.0, 2.0]
  else:
    assert 3.0 in pool.ravel().tolist() and float(out[2, 0, 0, 0]) in (1.0, 2.0)


def test_ema_tracks_generator_params():
  config = tiny_config("adain_gan")
  config.model.ema_decay = 0.5
  setup = build.build_setup(config)
  step = parallel.make_step(
    functools.partial(setup.family.train_step, setup=setup), "jit", jax.devices()[:1]
  )
  state = build.init_state(setup, jax.random.key(0), 32)
  init = jax.device_get(state.g_params)
  vgg = vgg_lib.load_params("random")
  state, _ = step(state, step.prepare_batch(batch_for("adain_gan")), vgg, jax.random.key(1))
  # After one step: ema = 0.5 * init + 0.5 * new.
  jax.tree.map(
    lambda e, a, b: np.testing.assert_allclose(e, 0.5 * a + 0.5 * b, rtol=1e-5, atol=1e-7),
    jax.device_get(state.ema_g_params),
    init,
    jax.device_get(state.g_params),
  )


def test_style_conditioned_d_judges_image_and_style_pairs():
  """loss.adv_condition='style': D's first conv reads 6 channels (image, style image); its
  scores depend on the style image; a train step runs and moves D."""
  from ganstyle_jax.families import adain_gan  # pylint: disable=g-import-not-at-top

  config = tiny_config("adain_gan")
  config.loss.adv_condition, config.data.real = "style", "synthetic:same_style"
  setup = build.build_setup(config)
  state = build.init_state(setup, jax.random.key(0), 32)
  kernels = [k for k in jax.tree.leaves(state.d_params) if k.ndim == 4]
  assert kernels[0].shape[2] == 6 and all(k.shape[2] != 6 for k in kernels[1:])
  batch = batch_for("adain_gan", n=2)
  d = jax.jit(lambda p, x, s: setup.discriminator.apply(p, adain_gan.judged(setup, x, s)))
  np.testing.assert_array_equal(
    adain_gan.judged(setup, batch["real"], batch["style"])[..., 3:], batch["style"]
  )
  scores = [
    np.asarray(d(state.d_params, batch["real"], s)) for s in (batch["style"], -batch["style"])
  ]
  assert np.abs(scores[0] - scores[1]).max() > 1e-4
  step = jax.jit(functools.partial(setup.family.train_step, setup=setup))
  new, metrics = step(state, batch, vgg_lib.load_params("random"), jax.random.key(1))
  assert all(np.isfinite(float(v)) for v in metrics.values()) and "g/adv" in metrics
  moved = jax.tree.map(lambda a, b: float(np.abs(a - b).max()), new.d_params, state.d_params)
  assert max(jax.tree.leaves(moved)) > 0
