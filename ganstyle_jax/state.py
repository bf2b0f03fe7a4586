"""GanState: everything a train step updates, as one pytree (checkpointed whole)."""

from __future__ import annotations

from typing import Any

import flax
import jax


@flax.struct.dataclass
class GanState:
  """Trainable state of a GAN run.

  Attributes:
    step: int32 scalar, number of train steps taken.
    g_params: generator params (adain_gan: the decoder; cyclegan: {'G': A->B, 'F': B->A}).
    d_params: discriminator params (adain_gan: one D; cyclegan: {'A': D_A, 'B': D_B}).
    g_opt_state, d_opt_state: optax states (their step counts are the schedule position).
    ema_g_params: exponential moving average of g_params, or None when model.ema_decay is 0.
    pool: cyclegan image pool {'A': [P, H, W, 3], 'B': [P, H, W, 3]} of past fakes, or None.
    pool_count: int32 scalar, images in the pool so far (<= P), or None.
  """

  step: jax.Array
  g_params: Any
  d_params: Any
  g_opt_state: Any
  d_opt_state: Any
  ema_g_params: Any = None
  pool: Any = None
  pool_count: Any = None
