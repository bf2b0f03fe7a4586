"""Arm: plain AdaIN with the Gram style loss instead of mean/std (w_adv = 0)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def get_config():
  return common.adain(w_adv=0.0, style_type="gram")
