"""Data parallelism: the same step body under jax.pmap or under jax.jit over a device mesh.

- 'pmap': `jax.pmap` over axis 'batch'. The state is unreplicated on the host side
  (in_axes=None, out_axes=None: JAX keeps it replicated on the devices); the batch has a
  leading local-device axis; the body averages gradients with `lax.pmean('batch')`.
- 'jit': `jax.jit` with NamedShardings on a 1-D mesh ('batch',): state replicated, batch
  sharded on its first axis; the body sees the global batch and XLA inserts the all-reduces.
Both donate the state buffers. `prepare_batch` puts a host batch into the layout each wants.
"""

from __future__ import annotations

import functools
import queue
import threading
import time
from typing import Any, Callable, Protocol

import jax
import numpy as np
from jax.sharding import NamedSharding

from ganstyle_jax.errors import UserError

AXIS = "batch"


def mesh(devices) -> jax.sharding.Mesh:
  """A 1-D mesh (AXIS,) over `devices`; the compiler shards intermediates (Auto axis)."""
  return jax.make_mesh(
    (len(devices),), (AXIS,), (jax.sharding.AxisType.Auto,), devices=list(devices)
  )


class ParallelStep:
  """A compiled train step plus the batch layout it expects.

  Call `step(state, batch, vgg_variables, key)` with a batch from `prepare_batch`.
  """

  def __init__(self, body: Callable, mode: str, devices=None):
    self.mode = mode
    self.devices = list(devices if devices is not None else jax.devices())
    self.local_devices = [d for d in self.devices if d.process_index == jax.process_index()]
    self.local_mesh = mesh(self.local_devices)
    if mode == "pmap":
      # pmap's device order is the local mesh's, so prepare_batch's shards need no moving.
      self._fn = jax.pmap(
        functools.partial(body, axis_name=AXIS),
        axis_name=AXIS,
        in_axes=(None, 0, None, None),
        out_axes=None,
        devices=(list(self.local_mesh.devices.flat) if jax.process_count() == 1 else None),
        donate_argnums=(0,),
      )
    elif mode == "jit":
      self.mesh = mesh(self.devices)
      self.replicated = NamedSharding(self.mesh, jax.P())
      self.batch_sharding = NamedSharding(self.mesh, jax.P(AXIS))
      self._fn = jax.jit(
        functools.partial(body, axis_name=None),
        in_shardings=(self.replicated, self.batch_sharding, self.replicated, self.replicated),
        out_shardings=(self.replicated, self.replicated),
        donate_argnums=(0,),
      )
    else:
      raise UserError(f"unknown parallelism {mode!r}; use 'pmap' or 'jit'")

  def prepare_batch(self, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Host batch {key: [local_batch, ...]} -> device arrays for this step's layout."""
    n = len(self.local_devices)
    for k, v in batch.items():
      if v.shape[0] % n:
        raise UserError(
          f"batch '{k}' of {v.shape[0]} images does not split over {n} local "
          "devices; make data.global_batch_size a multiple of the device count"
        )
    if self.mode == "pmap":
      sharding = NamedSharding(self.local_mesh, jax.P(AXIS))
      return jax.tree.map(lambda x: jax.device_put(x.reshape(n, -1, *x.shape[1:]), sharding), batch)
    return jax.tree.map(
      lambda x: jax.make_array_from_process_local_data(self.batch_sharding, x), batch
    )

  def place_replicated(self, tree):
    """Puts a host/device pytree (state, VGG variables, key) where the step wants it."""
    target = self.local_mesh if self.mode == "pmap" else self.mesh
    # Same sharding as the step's outputs, so step 2 reuses step 1's compilation.
    sharding = NamedSharding(target, jax.P())
    if jax.process_count() == 1:
      return jax.device_put(tree, sharding)

    # A global sharding spans other processes' devices: only host values can be put there
    # (every process holds the same values); PRNG keys travel as their raw key data.
    def put(x):
      if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
        data = jax.device_put(np.asarray(jax.random.key_data(x)), sharding)
        return jax.random.wrap_key_data(data, impl=jax.random.key_impl(x))
      return jax.device_put(np.asarray(x), sharding)

    return jax.tree.map(put, tree)

  def compile(self, state, batch, vgg_variables, key) -> dict[str, float]:
    """Compiles the step for arguments like these ahead of the first call, which then only
    runs it. Returns the seconds spent tracing and lowering (`lower_s`) and in XLA's compiler
    (`xla_compile_s`)."""
    t = time.perf_counter()
    lowered = self._fn.lower(state, batch, vgg_variables, key)
    lower_s = time.perf_counter() - t
    self._fn = lowered.compile()
    return {"lower_s": lower_s, "xla_compile_s": time.perf_counter() - t - lower_s}

  def __call__(self, state, batch, vgg_variables, key):
    return self._fn(state, batch, vgg_variables, key)


def make_step(body: Callable, mode: str, devices=None) -> ParallelStep:
  """Wraps a step body `body(state, batch, vgg, key, *, axis_name)` for `mode`."""
  return ParallelStep(body, mode, devices)


class PositionedIterator(Protocol):
  """Host batches with a resumable position (input_pipeline's TrainIterator)."""

  def __next__(self) -> dict[str, np.ndarray]: ...

  def get_state(self) -> dict[str, Any]: ...


class DevicePrefetcher:
  """Reads, decodes and transfers the next `size` batches in a background thread.

  `put` turns a host batch into device arrays (e.g. `ParallelStep.prepare_batch`). Each item is
  `(device_batch, data_state)`, where data_state is the iterator's position right after that
  batch: a checkpoint saved after training on it resumes with the batch that follows, however
  far ahead the thread has read. Errors in the thread (e.g. a source with no readable image)
  are raised by `next()`. size=0 reads synchronously in the caller's thread.
  """

  def __init__(
    self, iterator: PositionedIterator, put: Callable[[dict[str, np.ndarray]], Any], size: int = 2
  ):
    self._iterator, self._put = iterator, put
    self._queue: queue.Queue = queue.Queue(maxsize=max(size, 1))
    self._stop = threading.Event()
    self._thread = None
    if size > 0:
      self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
      self._thread.start()

  def _produce(self) -> tuple[Any, dict[str, Any]]:
    batch = self._put(next(self._iterator))
    return batch, self._iterator.get_state()

  def _run(self) -> None:
    while not self._stop.is_set():
      try:
        item = (self._produce(), None)
      except BaseException as e:  # handed to the consumer, which re-raises it
        item = (None, e)
      while not self._stop.is_set():
        try:
          self._queue.put(item, timeout=0.1)
          break
        except queue.Full:
          continue
      if item[1] is not None:
        return

  def __iter__(self) -> DevicePrefetcher:
    return self

  def __next__(self) -> tuple[Any, dict[str, Any]]:
    if self._thread is None:
      return self._produce()
    item, error = self._queue.get()
    if error is not None:
      raise error
    return item

  def close(self) -> None:
    """Stops the thread; batches read ahead are dropped (the saved position excludes them)."""
    self._stop.set()
    if self._thread is not None:
      self._thread.join()
