r"""The PyTorch bar of shared/PERF_NOTES.md, re-measured on the machine our benchmarks run on.

PERF_NOTES warns that absolute times drift between runs on shared machines and asks for ratios
measured in one run. This script times the same workloads in PyTorch (CPU), so that
`run.sh` can put a PyTorch line next to each of ours, measured minutes apart.

The networks are the reference architectures of DESIGN.md in their original PyTorch form
(junyanz/pytorch-CycleGAN-and-pix2pix ResnetGenerator and NLayerDiscriminator; naoto0804
pytorch-AdaIN encoder and decoder, VGG19 to relu4_1 without its 1x1 preprocessing conv); the
parameter counts are asserted against DESIGN.md. One step is a full training iteration:
CycleGAN updates both generators then both discriminators (LSGAN, cycle 10, identity 0.5);
AdaIN updates the decoder (content on relu4_1 + mean/std style on relu1_1..relu4_1), plus a
PatchGAN with LSGAN unless --no_adv. FLOPs are counted by torch's FlopCounterMode.

PyTorch is not a dependency of ganstyle_jax; install it in its own environment:

  python3 -m venv /tmp/torch-venv && /tmp/torch-venv/bin/pip install torch==2.13.0 numpy
  /tmp/torch-venv/bin/python experiments/benchmarks/torch_reference.py train \
      --model=cyclegan --image_size=128 --global_batch_size=1

Prints one JSON line per run, with the same field names as `python -m ganstyle_jax.benchmark`.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.flop_counter import FlopCounterMode

PARAMS = {"vgg": 3_505_728, "decoder": 3_505_219, "resnet9": 11_378_179, "patchgan": 2_764_737}


def n_params(m: nn.Module) -> int:
  return sum(p.numel() for p in m.parameters())


# ----------------------------------------------------------------------------- CycleGAN


class ResnetBlock(nn.Module):
  def __init__(self, dim: int):
    super().__init__()
    self.body = nn.Sequential(
      nn.ReflectionPad2d(1),
      nn.Conv2d(dim, dim, 3),
      nn.InstanceNorm2d(dim),
      nn.ReLU(True),
      nn.ReflectionPad2d(1),
      nn.Conv2d(dim, dim, 3),
      nn.InstanceNorm2d(dim),
    )

  def forward(self, x):
    return x + self.body(x)


def resnet_generator(ngf: int = 64, n_blocks: int = 9) -> nn.Module:
  layers = [nn.ReflectionPad2d(3), nn.Conv2d(3, ngf, 7), nn.InstanceNorm2d(ngf), nn.ReLU(True)]
  for mult in (1, 2):
    layers += [
      nn.Conv2d(ngf * mult, ngf * mult * 2, 3, stride=2, padding=1),
      nn.InstanceNorm2d(ngf * mult * 2),
      nn.ReLU(True),
    ]
  layers += [ResnetBlock(ngf * 4) for _ in range(n_blocks)]
  for mult in (4, 2):
    layers += [
      nn.ConvTranspose2d(ngf * mult, ngf * mult // 2, 3, stride=2, padding=1, output_padding=1),
      nn.InstanceNorm2d(ngf * mult // 2),
      nn.ReLU(True),
    ]
  layers += [nn.ReflectionPad2d(3), nn.Conv2d(ngf, 3, 7), nn.Tanh()]
  return nn.Sequential(*layers)


def patchgan(ndf: int = 64, n_layers: int = 3) -> nn.Module:
  layers = [nn.Conv2d(3, ndf, 4, stride=2, padding=1), nn.LeakyReLU(0.2, True)]
  mult = 1
  for i in range(1, n_layers + 1):
    prev, mult = mult, min(2**i, 8)
    layers += [
      nn.Conv2d(ndf * prev, ndf * mult, 4, stride=2 if i < n_layers else 1, padding=1),
      nn.InstanceNorm2d(ndf * mult),
      nn.LeakyReLU(0.2, True),
    ]
  layers += [nn.Conv2d(ndf * mult, 1, 4, stride=1, padding=1)]
  return nn.Sequential(*layers)


def lsgan(pred, target: float):
  return F.mse_loss(pred, torch.full_like(pred, target))


def adam(params):
  return torch.optim.Adam(params, lr=2e-4, betas=(0.5, 0.999))


def cyclegan_step_fn(args):
  g_ab, g_ba = resnet_generator(n_blocks=args.n_blocks), resnet_generator(n_blocks=args.n_blocks)
  d_a, d_b = patchgan(), patchgan()
  if args.n_blocks == 9:
    assert n_params(g_ab) == PARAMS["resnet9"] and n_params(d_a) == PARAMS["patchgan"]
  opt_g = adam(list(g_ab.parameters()) + list(g_ba.parameters()))
  opt_d = adam(list(d_a.parameters()) + list(d_b.parameters()))
  shape = (args.global_batch_size, 3, args.image_size, args.image_size)
  real_a, real_b = torch.rand(shape) * 2 - 1, torch.rand(shape) * 2 - 1

  def step():
    # Generators (D frozen), as in CycleGANModel.optimize_parameters.
    for p in list(d_a.parameters()) + list(d_b.parameters()):
      p.requires_grad_(False)
    fake_b, fake_a = g_ab(real_a), g_ba(real_b)
    rec_a, rec_b = g_ba(fake_b), g_ab(fake_a)
    idt_a, idt_b = g_ab(real_b), g_ba(real_a)
    loss_g = (
      lsgan(d_b(fake_b), 1.0)
      + lsgan(d_a(fake_a), 1.0)
      + 10 * (F.l1_loss(rec_a, real_a) + F.l1_loss(rec_b, real_b))
      + 5 * (F.l1_loss(idt_a, real_b) + F.l1_loss(idt_b, real_a))
    )
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    # Discriminators.
    for p in list(d_a.parameters()) + list(d_b.parameters()):
      p.requires_grad_(True)
    opt_d.zero_grad()
    loss_d = 0.5 * (
      lsgan(d_b(real_b), 1.0)
      + lsgan(d_b(fake_b.detach()), 0.0)
      + lsgan(d_a(real_a), 1.0)
      + lsgan(d_a(fake_a.detach()), 0.0)
    )
    loss_d.backward()
    opt_d.step()
    return loss_g.item() + loss_d.item()

  return step


# ----------------------------------------------------------------------------- AdaIN

VGG_CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512]  # conv1_1 .. conv4_1


class Encoder(nn.Module):
  """VGG19 to relu4_1, returning relu1_1, relu2_1, relu3_1, relu4_1."""

  def __init__(self):
    super().__init__()
    layers, c = [], 3
    for v in VGG_CFG:
      if v == "M":
        layers.append(nn.MaxPool2d(2, 2, ceil_mode=True))
      else:
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(c, v, 3), nn.ReLU(True)]
        c = v
    cuts = [3, 3 + 3 + 1 + 3, 3 + 3 + 1 + 3 + 3 + 1 + 3, len(layers)]  # after relu1_1 .. relu4_1
    self.slices = nn.ModuleList(nn.Sequential(*layers[a:b]) for a, b in zip([0] + cuts, cuts))

  def forward(self, x):
    feats = []
    for s in self.slices:
      x = s(x)
      feats.append(x)
    return feats


def decoder() -> nn.Module:
  def conv(i, o, relu=True):
    return [nn.ReflectionPad2d(1), nn.Conv2d(i, o, 3)] + ([nn.ReLU()] if relu else [])

  up = [nn.Upsample(scale_factor=2, mode="nearest")]
  return nn.Sequential(
    *conv(512, 256),
    *up,
    *conv(256, 256),
    *conv(256, 256),
    *conv(256, 256),
    *conv(256, 128),
    *up,
    *conv(128, 128),
    *conv(128, 64),
    *up,
    *conv(64, 64),
    *conv(64, 3, relu=False),
  )


def mean_std(f, eps: float = 1e-5):
  n, c = f.shape[:2]
  var = f.reshape(n, c, -1).var(dim=2) + eps
  return f.reshape(n, c, -1).mean(dim=2).reshape(n, c, 1, 1), var.sqrt().reshape(n, c, 1, 1)


def adain(content, style):
  c_mean, c_std = mean_std(content)
  s_mean, s_std = mean_std(style)
  return (content - c_mean) / c_std * s_std + s_mean


def adain_step_fn(args):
  enc, dec = Encoder(), decoder()
  assert n_params(enc) == PARAMS["vgg"] and n_params(dec) == PARAMS["decoder"]
  for p in enc.parameters():
    p.requires_grad_(False)
  opt_g = adam(dec.parameters())
  d = None if args.no_adv else patchgan()
  opt_d = None if d is None else adam(d.parameters())
  shape = (args.global_batch_size, 3, args.image_size, args.image_size)
  content, style, real = (torch.rand(shape) * 2 - 1 for _ in range(3))

  def step():
    with torch.no_grad():
      s_feats = enc(style)
      t = adain(enc(content)[-1], s_feats[-1])
    out = dec(t)
    o_feats = enc(out)
    loss_c = F.mse_loss(o_feats[-1], t)
    loss_s = sum(
      F.mse_loss(om, sm) + F.mse_loss(os_, ss)
      for (om, os_), (sm, ss) in zip(map(mean_std, o_feats), map(mean_std, s_feats))
    )
    loss_g = loss_c + 10 * loss_s
    if d is not None:
      for p in d.parameters():
        p.requires_grad_(False)
      loss_g = loss_g + lsgan(d(out), 1.0)
    opt_g.zero_grad()
    loss_g.backward()
    opt_g.step()
    total = loss_g.item()
    if d is not None:
      for p in d.parameters():
        p.requires_grad_(True)
      opt_d.zero_grad()
      loss_d = 0.5 * (lsgan(d(real), 1.0) + lsgan(d(out.detach()), 0.0))
      loss_d.backward()
      opt_d.step()
      total += loss_d.item()
    return total

  return step


def stylize_fn(args):
  enc, dec = Encoder().eval(), decoder().eval()
  x = torch.rand(1, 3, args.image_size, args.image_size) * 2 - 1

  @torch.no_grad()
  def run():
    return dec(adain(enc(x)[-1], enc(x)[-1])).sum().item()  # encode C and S, AdaIN, decode

  return run


# ----------------------------------------------------------------------------- timing


def timed(fn, warmup: int, steps: int) -> tuple[float, list[float]]:
  t = time.perf_counter()
  fn()
  first = time.perf_counter() - t
  for _ in range(warmup):
    fn()
  ts = []
  for _ in range(steps):
    t = time.perf_counter()
    fn()
    ts.append(time.perf_counter() - t)
  return first, ts


def count_flops(fn) -> float:
  counter = FlopCounterMode(display=False)
  with counter:
    fn()
  return float(counter.get_total_flops())


def main():
  p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
  p.add_argument("benchmark", choices=["train", "stylize"])
  p.add_argument("--model", choices=["cyclegan", "adain_gan"], default="cyclegan")
  p.add_argument("--image_size", type=int, default=256)
  p.add_argument("--global_batch_size", type=int, default=1)
  p.add_argument("--n_blocks", type=int, default=9)
  p.add_argument("--no_adv", action="store_true")
  p.add_argument("--threads", type=int, default=0, help="torch threads; 0 = torch's default")
  p.add_argument("--warmup", type=int, default=2)
  p.add_argument("--steps", type=int, default=3)
  args = p.parse_args()
  if args.threads:
    torch.set_num_threads(args.threads)
  torch.manual_seed(0)
  if args.benchmark == "train":
    fn = (cyclegan_step_fn if args.model == "cyclegan" else adain_step_fn)(args)
    flops = count_flops(fn)
    first, ts = timed(fn, args.warmup, args.steps)
    step_s = statistics.median(ts)
    result = {
      "benchmark": "train",
      "model": args.model,
      "image_size": args.image_size,
      "global_batch_size": args.global_batch_size,
      "adversarial": not args.no_adv,
      **({"n_blocks": args.n_blocks} if args.model == "cyclegan" else {}),
      "step_s": step_s,
      "images_per_sec": args.global_batch_size / step_s,
      "step_s_all": ts,
      "first_step_s": first,
      "flops_per_step": flops,
      "achieved_flops": flops / step_s,
    }
  else:
    fn = stylize_fn(args)
    first, ts = timed(fn, args.warmup, args.steps)
    result = {
      "benchmark": "stylize",
      "method": "generator",
      "image_size": args.image_size,
      "latency_ms": 1000 * statistics.median(ts),
      "latency_ms_all": [1000 * t for t in ts],
      "first_step_s": first,
    }
  result.update(
    {
      "framework": "pytorch",
      "torch_version": torch.__version__,
      "threads": torch.get_num_threads(),
      "cpu_capability": torch.backends.cpu.get_cpu_capability(),
      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,
    }
  )
  print(json.dumps(result), flush=True)


if __name__ == "__main__":
  main()
