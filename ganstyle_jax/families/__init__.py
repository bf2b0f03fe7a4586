"""The model families, by config.model.name. Adding one: a module here + a line in FAMILIES."""

from __future__ import annotations

from ganstyle_jax.errors import UserError
from ganstyle_jax.families import adain_gan, cyclegan, pix2pix
from ganstyle_jax.families.base import Family

FAMILIES: dict[str, Family] = {
  "adain_gan": adain_gan.FAMILY,
  "cyclegan": cyclegan.FAMILY,
  "pix2pix": pix2pix.FAMILY,
}


def get(name: str) -> Family:
  """The family registered as `name`; a UserError listing the known ones otherwise."""
  if name not in FAMILIES:
    raise UserError(f"unknown model.name {name!r}; use one of {tuple(FAMILIES)}")
  return FAMILIES[name]
