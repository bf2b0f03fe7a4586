"""Arm: plain AdaIN, mean/std style loss, no adversarial term (w_adv = 0)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def get_config():
  return common.adain(w_adv=0.0)
