"""Arm: AdaIN + PatchGAN, nonsat adversarial loss, w_adv = 1."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def get_config():
  return common.adain(w_adv=1.0, adv_type="nonsat")
