"""Arm: CycleGAN (unpaired photo <-> painting, no VGG losses)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common


def get_config():
  return common.cyclegan()
