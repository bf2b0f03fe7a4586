"""Reading PyTorch state dicts exported as .npz or .safetensors (no torch dependency)."""

from __future__ import annotations

import pathlib
from collections.abc import Mapping

import numpy as np

from ganstyle_jax.errors import UserError


def read(path: pathlib.Path, hint: str = "re-export the state dict") -> Mapping[str, np.ndarray]:
  """{name: array} from a .safetensors file or an .npz of arrays; one-line UserError if corrupt."""
  try:
    if path.suffix == ".safetensors":
      from safetensors.numpy import load_file  # pylint: disable=g-import-not-at-top

      return load_file(str(path))
    with np.load(path, allow_pickle=False) as z:
      return {k: z[k] for k in z.files}
  except Exception as e:  # noqa: BLE001  (corrupt files raise a variety of errors)
    raise UserError(
      f"{path}: cannot read {path.suffix} weights ({type(e).__name__}: {e}); {hint}"
    ) from None
