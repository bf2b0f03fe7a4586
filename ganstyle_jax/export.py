"""Export a trained generator for serving: StableHLO (jax.export) or ONNX (jax2onnx).

  python -m ganstyle_jax.export --workdir=DIR --format=stablehlo|onnx --out=PATH [--step=N] \\
      [--direction=AtoB|BtoA] [--platforms=cpu,cuda,rocm,tpu]

The generator of the checkpoint is exported with the params `ganstyle_jax.load` uses (the EMA
params when the run keeps them), built with `ops.ConvPolicy.xla()`: every convolution is a plain
`lax.conv_general_dilated`, so the CPU paths of `ops.conv2d` (Winograd, `lax.platform_dependent`)
are not in the graph. Images are float32 NHWC RGB in [-1, 1] (uint8 x: x / 127.5 - 1); outputs
are clipped to [-1, 1]. The graphs, their inputs and outputs by name:

  adain_gan  model    content [1, H, W, 3], style [1, h, w, 3], alpha [] -> output [1, H, W, 3]
             encoder  image [1, H, W, 3] -> features [1, H/m, W/m, C], mean, std [1, 1, 1, C]
             decoder  features [1, H/m, W/m, C] -> output [1, H, W, 3]
  cyclegan,  model    input [1, H, W, 3] -> output [1, H, W, 3], in the --direction chosen at
  pix2pix             export (pix2pix has one: AtoB)

The encoder and decoder let any runtime do what stylize does between them (mix styles, mask
two styles): AdaIN's target is t = alpha * ((f - mean_c) / std_c * std_s + mean_s) +
(1 - alpha) * f, with (mean_c, std_c) the content's statistics, (mean_s, std_s) a style's (or a
weighted mean of several styles'), and for a mask m (1: the first style), resized to the
features' size, t = m * t_1 + (1 - m) * t_2 before the alpha blend.

Files: PATH is the model graph (the format's suffix is added when PATH has none); adain_gan's
other graphs sit beside it as <stem>.encoder<suffix> and <stem>.decoder<suffix>, and the metadata
as PATH.json (e.g. model.onnx.json, so the two formats can share a folder): model, step, direction, each graph's file, inputs and outputs, the input
conventions, the size multiple m and the smallest size, the platforms (StableHLO) or opset (ONNX)
and the exporting versions. A StableHLO file is `jax.export.Exported.serialize()`'s bytes (run it
with `jax.export.deserialize(data).call(...)`, no ganstyle_jax needed); an ONNX file is one
self-contained ModelProto of standard-domain operators, checked with onnx.checker. Exporting
twice gives byte-identical files. `load(PATH)` runs either kind with its inputs checked.

H, W, h, w are dynamic: any multiple of m (2 ** the network's halvings) of at least the smallest
size, both stated in the metadata. They are symbolic dimensions under constraints that make them
multiples (`mod(H, 2) == 0` at each halving, and the even-number identities of the strided
convolutions' size arithmetic), so each graph is traced once for all such sizes; a StableHLO
artifact checks the constraints when called, ONNX runtimes do not (`load` does, for both).

ONNX conversion (jax2onnx, installed apart: see the README) needs three workarounds, all inside
this module and covered by tests/test_export.py's parity tests:
- jax2onnx converts the jaxpr that JAX traced (replayed), not the flax modules: it would
  otherwise patch flax.linen.ConvTranspose (pix2pix's U-Net) into a primitive whose explicit
  padding is an unhashable list, which current JAX refuses. The replayed graph is the same
  function, operator for operator.
- The symbolic dimensions live in a SymbolicScope whose deep copy is itself: jax2onnx deep-copies
  gather metadata holding dimensions, and a copied scope with equality constraints is broken
  (and a scope is an identity: copies must not exist).
- jax2onnx's gather plugin registers its constant folders once per process (a module flag) but
  on each conversion's context: the flag is reset before each conversion, or a second export in
  one process loses the folders and fails on the symbolic crop of `ops.conv2d`.
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
import json
import logging
import os
import pathlib
from typing import Any, Callable, Sequence

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np

from ganstyle_jax import build, ops
from ganstyle_jax.errors import UserError, run_cli
from ganstyle_jax.models import generators
from ganstyle_jax.models import layers as L

FORMATS = ("stablehlo", "onnx")
SUFFIXES = {"stablehlo": ".stablehlo", "onnx": ".onnx"}
PLATFORMS = ("cpu", "cuda", "rocm", "tpu")
ONNX_OPSET = 23
JAX2ONNX_VERSION = "0.17.1"  # the version tested; pyproject.toml's [export] extra and README
CHANNEL_STATS_EPS = 1e-5  # layers.channel_stats' default

INPUT_CONVENTIONS = {
  "layout": "NHWC",
  "dtype": "float32",
  "channels": "RGB",
  "range": [-1.0, 1.0],
  "from_uint8": "x / 127.5 - 1",
  "to_uint8": "clip((y + 1) * 127.5 + 0.5, 0, 255) as uint8",
  "batch": 1,
}

Shape = tuple[int | str, ...]


@dataclasses.dataclass(frozen=True)
class Graph:
  """One exported function.

  Attributes:
    name: 'model', 'encoder' or 'decoder'.
    fn: positional float32 arrays -> an array or a tuple of arrays (the outputs in order).
    inputs: (name, shape) per input; a shape holds ints and the names of dynamic dimensions.
    outputs: (name, shape) per output; dynamic dimensions written as expressions ('H/4').
    image_dims: the dynamic dimensions that are image sizes (multiples of m, >= min_size).
    feature_dims: the dynamic dimensions that are feature sizes (image size / m).
  """

  name: str
  fn: Callable[..., Any]
  inputs: tuple[tuple[str, Shape], ...]
  outputs: tuple[tuple[str, Shape], ...]
  image_dims: tuple[str, ...] = ()
  feature_dims: tuple[str, ...] = ()


class _Scope(jax.export.SymbolicScope):
  """A SymbolicScope that deep-copies to itself (see the module docstring: jax2onnx)."""

  def __deepcopy__(self, memo):
    return self


def _constraints(graph: Graph, multiple: int, min_size: int) -> list[str]:
  """Symbolic constraints making the image dimensions multiples of `multiple` (a power of 2) of
  at least min_size, and the feature dimensions at least min_size / multiple.

  At each halving e -> floordiv(e, 2): e is even, so floordiv(e - 1, 2) and floordiv(e - 2, 2)
  (the output sizes of stride-2 convolutions with padding 1 and kernel 3 or 4) are
  floordiv(e, 2) - 1; with these JAX proves that the networks give back [1, H, W, 3].
  """
  out = []
  for d in graph.image_dims:
    e = d
    for _ in range(multiple.bit_length() - 1):
      out += [
        f"mod({e}, 2) == 0",
        f"floordiv({e} - 1, 2) == floordiv({e}, 2) - 1",
        f"floordiv({e} - 2, 2) == floordiv({e}, 2) - 1",
      ]
      e = f"floordiv({e}, 2)"
    out.append(f"{d} >= {min_size}")
  out += [f"{d} >= {max(1, min_size // multiple)}" for d in graph.feature_dims]
  return out


def _specs(graph: Graph, multiple: int, min_size: int) -> list[jax.ShapeDtypeStruct]:
  """The graph's inputs as ShapeDtypeStructs with symbolic dimensions in one scope."""
  names = list(dict.fromkeys(d for _, s in graph.inputs for d in s if isinstance(d, str)))
  dims = {}
  if names:
    scope = _Scope(_constraints(graph, multiple, min_size))
    dims = dict(zip(names, jax.export.symbolic_shape(", ".join(names), scope=scope)))
  return [
    jax.ShapeDtypeStruct(tuple(dims.get(d, d) for d in shape), jnp.float32)
    for _, shape in graph.inputs
  ]


def _clip(x):
  return jnp.clip(x.astype(jnp.float32), -1.0, 1.0)


def adain_target(f, c_mean, c_std, s_mean, s_std, alpha):
  """AdaIN's target t = alpha * ((f - c_mean) / c_std * s_std + s_mean) + (1 - alpha) * f, as
  `Stylizer` computes it (the formula the metadata states for other runtimes)."""
  t = (f - c_mean) / c_std * s_std + s_mean
  return alpha * t + (1 - alpha) * f


def graphs(stylizer, direction: str | None = None) -> list[Graph]:
  """The graphs to export of a `Stylizer`'s generator (its params, its config's networks built
  with XLA's own convolutions).

  Raises:
    UserError: a direction the family does not have (or any for adain_gan).
  """
  config = stylizer.config.copy_and_resolve_references()
  # A plain graph: CycleGAN's residual blocks unrolled rather than a loop (the scan only
  # saves XLA compile time; the function is the same).
  config.model.generator.scan_blocks = False
  setup = build.build_setup(config, conv_policy=ops.ConvPolicy.xla())
  family = setup.family
  if family.style_conditioned:
    if direction is not None:
      raise UserError(
        f"--direction={direction}: {family.name} has none (it is style-conditioned: the "
        "exported graph takes a style image); --direction applies to cyclegan and pix2pix"
      )
    g = setup.generator
    variables = generators.assemble_variables(stylizer.vgg_variables, stylizer.g_params)
    m = stylizer.multiple

    def encode(x):
      f = g.apply(variables, x, method=g.encode)[g.encoder_layer].astype(jnp.float32)
      return (f, *L.channel_stats(f, CHANNEL_STATS_EPS))

    def decode(t):
      return _clip(g.apply(variables, t, method=g.decode))

    def model(content, style, alpha):
      if g.transfer_kind != "adain":
        return _clip(g.apply(variables, content, style, alpha))
      f_c, c_mean, c_std = encode(content)
      _, s_mean, s_std = encode(style)
      return decode(adain_target(f_c, c_mean, c_std, s_mean, s_std, alpha))

    c = jax.eval_shape(encode, jax.ShapeDtypeStruct((1, m, m, 3), jnp.float32))[0].shape[-1]
    one = (1, "H", "W", 3)
    feats = (1, f"H/{m}", f"W/{m}", c)
    stats = (1, 1, 1, c)
    model_graph = Graph(
      "model",
      model,
      (("content", one), ("style", (1, "h", "w", 3)), ("alpha", ())),
      (("output", one),),
      image_dims=("H", "W", "h", "w"),
    )
    if g.transfer_kind != "adain":  # no AdaIN statistics between encoder and decoder
      return [model_graph]
    return [
      model_graph,
      Graph(
        "encoder",
        encode,
        (("image", one),),
        (("features", feats), ("mean", stats), ("std", stats)),
        image_dims=("H", "W"),
      ),
      Graph(
        "decoder",
        decode,
        (("features", (1, "fh", "fw", c)),),
        (("output", (1, f"{m}*fh", f"{m}*fw", 3)),),
        feature_dims=("fh", "fw"),
      ),
    ]
  direction = direction or family.directions[0]
  if direction not in family.directions:
    raise UserError(f"--direction={direction}: {family.name} has {', '.join(family.directions)}")
  g_params = stylizer.g_params
  model = lambda x: _clip(family.translate(setup, g_params, x, direction))
  return [
    Graph(
      "model", model, (("input", (1, "H", "W", 3)),), (("output", (1, "H", "W", 3)),), ("H", "W")
    )
  ]


def min_size(graph: Graph, multiple: int) -> int:
  """The smallest image size (a multiple of `multiple`) for which JAX proves the graph valid
  for every larger multiple: reflection padding needs more than one feature pixel, so the
  networks that pad at their coarsest level (AdaIN's decoder, CycleGAN's residual blocks) need
  2 * multiple, the U-Net 1 * multiple."""
  for k in (1, 2, 4):
    try:
      jax.eval_shape(graph.fn, *_specs(graph, multiple, k * multiple))
      return k * multiple
    except (ValueError, jax.errors.InconclusiveDimensionOperation):
      continue
  jax.eval_shape(graph.fn, *_specs(graph, multiple, 8 * multiple))  # raises the reason
  return 8 * multiple


def _check_output_shapes(graph: Graph, specs) -> None:
  """The model graph's traced output is [1, H, W, 3] for input [1, H, W, 3] (JAX proved it)."""
  if graph.name == "model":
    got, want = jax.eval_shape(graph.fn, *specs).shape, (*specs[0].shape[:3], 3)
    if got != want:
      raise RuntimeError(f"{graph.name}: output shape {got} is not the input's {want}")


# ----------------------------------------------------------------------------- writers


def _stablehlo_bytes(graph: Graph, specs, platforms: Sequence[str]) -> tuple[bytes, dict]:
  # MLIR locations without Python tracebacks (the name stack stays: ".../ReflectConv_0/conv"):
  # the tracebacks hold the caller's frames, so the bytes would depend on who exports.
  limit = jax.config.jax_traceback_in_locations_limit
  jax.config.update("jax_traceback_in_locations_limit", 0)
  try:
    exported = jax.export.export(jax.jit(graph.fn), platforms=tuple(platforms))(*specs)
  finally:
    jax.config.update("jax_traceback_in_locations_limit", limit)
  info = {
    "platforms": list(exported.platforms),
    "calling_convention_version": exported.calling_convention_version,
  }
  return bytes(exported.serialize()), info


def _jax2onnx():
  """jax2onnx, or a UserError saying how to install it (it is not a declared dependency)."""
  try:
    import jax2onnx  # pylint: disable=g-import-not-at-top
  except ImportError:
    raise UserError(
      "--format=onnx needs jax2onnx: pip install -e '.[export]' && "
      f"pip install --no-deps jax2onnx=={JAX2ONNX_VERSION} (see the README)"
    ) from None
  return jax2onnx


def _onnx_bytes(graph: Graph, specs) -> tuple[bytes, dict]:
  jax2onnx = _jax2onnx()
  import onnx  # pylint: disable=g-import-not-at-top
  from jax2onnx.plugins.jax.lax import gather  # pylint: disable=g-import-not-at-top

  closed = jax.make_jaxpr(graph.fn)(*specs)
  replay = lambda *args: jax.extend.core.jaxpr_as_fun(closed)(*args)
  if hasattr(gather, "_CONST_HANDLERS_REGISTERED"):
    gather._CONST_HANDLERS_REGISTERED = False  # pylint: disable=protected-access
  # jax2onnx's plugin discovery warns about every optional extra; onnx_ir, about intermediate
  # values whose type it leaves out of the file (the model is checked in full below).
  quiet = [logging.getLogger(name) for name in ("jax2onnx", "onnx_ir")]
  levels = [q.level for q in quiet]
  for q in quiet:
    q.setLevel(logging.ERROR)
  try:
    model = jax2onnx.to_onnx(
      replay,
      specs,
      model_name=graph.name,
      opset=ONNX_OPSET,
      input_names=[n for n, _ in graph.inputs],
      output_names=[n for n, _ in graph.outputs],
    )
  finally:
    for q, level in zip(quiet, levels):
      q.setLevel(level)
  _drop_unused_initializers(model)
  onnx.checker.check_model(model, full_check=True)
  domains = {n.domain for n in model.graph.node} - {"", "ai.onnx"}
  if domains or model.functions:
    raise RuntimeError(f"{graph.name}: the ONNX graph uses non-standard domains {domains}")
  info = {
    "opset": ONNX_OPSET,
    "operators": sorted({n.op_type for n in model.graph.node}),
  }
  return model.SerializeToString(), info


def _drop_unused_initializers(model) -> None:
  """Removes the initializers no node reads (jax2onnx leaves a few constants of its own, which
  onnxruntime would warn about at every session start)."""
  import onnx  # pylint: disable=g-import-not-at-top

  subgraphs = (onnx.AttributeProto.GRAPH, onnx.AttributeProto.GRAPHS)
  if any(a.type in subgraphs for n in model.graph.node for a in n.attribute):
    return  # control flow reads outer names from inside its subgraphs: keep everything
  used = {i for n in model.graph.node for i in n.input} | {o.name for o in model.graph.output}
  keep = [t for t in model.graph.initializer if t.name in used]
  del model.graph.initializer[:]
  model.graph.initializer.extend(keep)


def _versions(fmt: str) -> dict[str, str]:
  names = ["ganstyle-jax", "jax", "jaxlib", "flax", "numpy"]
  names += ["jax2onnx", "onnx"] if fmt == "onnx" else []
  out = {}
  for name in names:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = "unknown"
  return out


def artifact_paths(
  out: str | os.PathLike, fmt: str, names: Sequence[str]
) -> dict[str, pathlib.Path]:
  """{graph name: file} and {'metadata': PATH.json} for --out=PATH."""
  out = pathlib.Path(out)
  if not out.suffix:
    out = out.with_name(out.name + SUFFIXES[fmt])
  if out.suffix.lower() == ".json":
    raise UserError(
      f"--out={out}: .json is the metadata's suffix; use e.g. {out.stem}{SUFFIXES[fmt]}"
    )
  files = {n: out if n == "model" else out.with_name(f"{out.stem}.{n}{out.suffix}") for n in names}
  files["metadata"] = out.with_name(out.name + ".json")
  return files


def export(
  stylizer,
  fmt: str,
  out: str | os.PathLike,
  direction: str | None = None,
  platforms: Sequence[str] = PLATFORMS,
) -> dict[str, pathlib.Path]:
  """Writes a Stylizer's generator graphs and their metadata.

  Args:
    stylizer: `ganstyle_jax.load(workdir)` (or a `Stylizer` of any params).
    fmt: 'stablehlo' or 'onnx'.
    out: the model graph's file (see the module docstring for the others).
    direction: G(x) families: 'AtoB' (default) or 'BtoA'.
    platforms: StableHLO: the platforms the artifact is lowered for.
  Returns:
    {graph name: file written, 'metadata': the JSON file}.
  Raises:
    UserError: an unknown format or platform, a direction the model lacks, jax2onnx missing.
  """
  if fmt not in FORMATS:
    raise UserError(f"--format={fmt}: use one of {', '.join(FORMATS)}")
  bad = [p for p in platforms if p not in PLATFORMS]
  if fmt == "stablehlo" and (bad or not platforms):
    raise UserError(f"--platforms={','.join(platforms)}: use some of {', '.join(PLATFORMS)}")
  if fmt == "onnx":
    _jax2onnx()
  gs = graphs(stylizer, direction)
  multiple = stylizer.multiple
  if multiple & (multiple - 1):
    raise RuntimeError(f"size multiple {multiple} is not a power of 2")
  smallest = min_size(gs[0], multiple)
  files = artifact_paths(out, fmt, [g.name for g in gs])
  meta = {
    "format": fmt,
    "model": stylizer.name,
    "step": int(stylizer.step),
    "direction": None if stylizer.family.style_conditioned else (direction or "AtoB"),
    "input_conventions": INPUT_CONVENTIONS,
    "size_multiple": multiple,
    "min_size": smallest,
    "dynamic_dims": "H, W, h, w: image sizes, multiples of size_multiple, >= min_size; "
    "fh, fw: feature sizes, >= min_size / size_multiple",
    "graphs": {},
    "versions": _versions(fmt),
  }
  if stylizer.family.style_conditioned:
    meta["encoder_layer"] = stylizer.setup.generator.encoder_layer
  if any(graph.name == "decoder" for graph in gs):  # AdaIN transfer: encoder and decoder graphs
    meta["adain"] = (
      "t = alpha * ((f - mean_c) / std_c * std_s + mean_s) + (1 - alpha) * f; mean, std over "
      f"H and W per channel, std = sqrt(var + {CHANNEL_STATS_EPS}); mixing styles: weighted "
      "means of their mean and std; a mask m [H/m, W/m] (1: first style): "
      "t = m * t_1 + (1 - m) * t_2, then the alpha blend"
    )
  blobs = {}
  for graph in gs:
    specs = _specs(graph, multiple, smallest)
    _check_output_shapes(graph, specs)
    if fmt == "stablehlo":
      blobs[graph.name], info = _stablehlo_bytes(graph, specs, platforms)
    else:
      blobs[graph.name], info = _onnx_bytes(graph, specs)
    meta["graphs"][graph.name] = {
      "file": files[graph.name].name,
      "inputs": [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in graph.inputs],
      "outputs": [{"name": n, "shape": list(s), "dtype": "float32"} for n, s in graph.outputs],
      **info,
    }
  files["metadata"].parent.mkdir(parents=True, exist_ok=True)
  for name, blob in blobs.items():
    files[name].write_bytes(blob)
  files["metadata"].write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
  return files


def export_workdir(
  workdir: str | os.PathLike,
  fmt: str,
  out: str | os.PathLike,
  step: int | None = None,
  direction: str | None = None,
  platforms: Sequence[str] = PLATFORMS,
) -> dict[str, pathlib.Path]:
  """`export` of workdir's newest readable (or given) checkpoint, as `ganstyle_jax.load` reads
  it. Raises UserError for a workdir without a (readable) checkpoint, and as `export`."""
  if fmt not in FORMATS:  # before the checkpoint is read
    raise UserError(f"--format={fmt}: use one of {', '.join(FORMATS)}")
  from ganstyle_jax import stylize  # pylint: disable=g-import-not-at-top

  return export(stylize.load(workdir, step), fmt, out, direction, platforms)


# ----------------------------------------------------------------------------- running


class Artifact:
  """An exported artifact loaded for inference, its inputs checked against the metadata.

  StableHLO runs through `jax.export.deserialize`, ONNX through onnxruntime. Use
  `exported(content=..., style=..., alpha=...)` (adain_gan) or `exported(input=...)`, or
  `exported.run('encoder', image=...)`; each returns {output name: float32 array}.
  """

  def __init__(self, path: str | os.PathLike):
    path = pathlib.Path(path)
    meta_path = path.with_name(path.name + ".json")
    if not path.exists():
      raise UserError(f"{path}: no such file")
    if not meta_path.exists():
      raise UserError(f"{path}: its metadata {meta_path.name} is missing (export writes both)")
    self.meta = json.loads(meta_path.read_text())
    self.directory = path.parent
    self._runners: dict[str, Callable] = {}

  def _runner(self, graph: str) -> Callable:
    if graph not in self._runners:
      g = self.meta["graphs"][graph]
      data = (self.directory / g["file"]).read_bytes()
      if self.meta["format"] == "stablehlo":
        exp = jax.export.deserialize(bytearray(data))

        def call(*args):
          out = exp.call(*args)
          return [np.asarray(y) for y in (out if isinstance(out, (tuple, list)) else (out,))]

        self._runners[graph] = call
      else:
        import onnxruntime  # pylint: disable=g-import-not-at-top

        options = onnxruntime.SessionOptions()
        options.log_severity_level = 3  # errors only (not its unused-initializer notes)
        sess = onnxruntime.InferenceSession(data, options, providers=["CPUExecutionProvider"])
        names = [i["name"] for i in g["inputs"]]
        self._runners[graph] = lambda *args: sess.run(None, dict(zip(names, args)))
    return self._runners[graph]

  def check(self, graph: str, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    """The inputs in the graph's order as float32 arrays.

    Raises:
      UserError: one line: a missing or unknown input, a wrong rank or fixed size, or an image
        size that is not a multiple of size_multiple (or below min_size).
    """
    if graph not in self.meta["graphs"]:
      raise UserError(f"no {graph!r} graph in this export; it has {', '.join(self.meta['graphs'])}")
    spec = self.meta["graphs"][graph]["inputs"]
    names = [i["name"] for i in spec]
    if set(inputs) != set(names):
      raise UserError(f"{graph} takes inputs {', '.join(names)}; got {', '.join(inputs) or 'none'}")
    m, smallest = self.meta["size_multiple"], self.meta["min_size"]
    args = []
    for s in spec:
      name, shape = s["name"], s["shape"]
      x = np.asarray(inputs[name], np.float32)
      if x.ndim != len(shape) or any(isinstance(d, int) and d != n for d, n in zip(shape, x.shape)):
        raise UserError(f"{name} has shape {list(x.shape)}; {graph} takes {shape}")
      if len(shape) == 4 and shape[-1] == 3:
        h, w = x.shape[1:3]
        if h % m or w % m or min(h, w) < smallest:
          fit = [max(smallest, -(-n // m) * m) for n in (h, w)]
          raise UserError(
            f"{name} is {w}x{h} (WxH): height and width must be multiples of {m} and at "
            f"least {smallest}; pad it to {fit[1]}x{fit[0]} (stylize pads by reflection)"
          )
      args.append(x)
    return args

  def run(self, graph: str = "model", **inputs: np.ndarray) -> dict[str, np.ndarray]:
    args = self.check(graph, inputs)
    outs = self._runner(graph)(*args)
    names = [o["name"] for o in self.meta["graphs"][graph]["outputs"]]
    return dict(zip(names, (np.asarray(y) for y in outs)))

  def __call__(self, **inputs: np.ndarray) -> dict[str, np.ndarray]:
    return self.run("model", **inputs)


def load(path: str | os.PathLike) -> Artifact:
  """The exported artifact at `path` (its model graph) with its metadata beside it."""
  return Artifact(path)


# ----------------------------------------------------------------------------- CLI


def main(argv):
  from absl import flags  # pylint: disable=g-import-not-at-top

  F = flags.FLAGS
  del argv
  platforms = [p.strip() for p in F.platforms.split(",") if p.strip()]
  files = export_workdir(F.workdir, F.format, F.out, F.step, F.direction, platforms)
  for name, path in files.items():
    print(f"wrote {path}" + ("" if name == "metadata" else f" ({name})"))


def run():
  """Console script `ganstyle-export`."""
  from absl import flags  # pylint: disable=g-import-not-at-top

  flags.DEFINE_string("workdir", None, "Training workdir (its latest checkpoint is exported).")
  flags.DEFINE_string("format", None, "stablehlo or onnx.")
  flags.DEFINE_string(
    "out", None, "The model graph's file; the other graphs and PATH.json beside it."
  )
  flags.DEFINE_integer("step", None, "Checkpoint step (default: the latest readable).")
  flags.DEFINE_string("direction", None, "cyclegan: AtoB (G, default) or BtoA (F); pix2pix: AtoB.")
  flags.DEFINE_string(
    "platforms", ",".join(PLATFORMS), "stablehlo: the platforms the artifact runs on."
  )
  flags.mark_flags_as_required(["workdir", "format", "out"])

  run_cli(main)


if __name__ == "__main__":
  run()
