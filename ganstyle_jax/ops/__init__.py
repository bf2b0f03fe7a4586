"""Platform-specific kernels: the CPU convolution paths behind one `conv2d`.

Every convolution of the trained networks goes through `conv2d`, which on the CPU (other
platforms keep XLA's convolution and its gradients, through `lax.platform_dependent`):
- runs 3x3 stride-1 float32 layers with enough input and output channels by Winograd's
  F(4x4, 3x3) (F(2x2, 3x3) for small outputs), forward and backward (`winograd`): a quarter of
  the multiplications, as one batched matmul;
- replaces XLA's kernel gradient where it is slow (`kernel_grads`): image by image for batches
  whose input or output outgrows the caches, and as one matmul for layers with few output channels;
- optionally (`ConvPolicy.im2col_bytes`, off by default) runs stride-1 layers whose kernel is
  not 3x3 as one matmul of their patches (im2col);
and, on every platform, computes an unpadded ('VALID') stride-1 convolution outside the
Winograd path, such as reflection padding's `pad(reflect) -> conv(padding='VALID')`, as a
'SAME' one cropped: XLA's CPU convolution without padding is several times slower.

`conv_transpose_x2` (`upsample`), the x2 transposed convolution of the generators' decoders,
runs on the CPU as one matmul by its 9 taps and shifted sums (`ConvPolicy.transpose_as_matmul`),
elsewhere as a sub-pixel `conv2d`; its adjoint, the 3x3 stride-2 convolution, has its
gradients on the CPU the same way (`ConvPolicy.stride2_phases`). Both are in `phases`.

Which path a layer takes is decided by a `ConvPolicy`, a frozen (hashable) value passed to
`conv2d` as a static argument; the linen layers of `ganstyle_jax.models` hold one as their
`conv_policy` attribute. `DEFAULT` has the measured thresholds; `ConvPolicy.xla()` makes every
layer XLA's own convolution (for FLOP counts of direct convolutions). Timings:
experiments/benchmarks/README.md.

`warping` (not platform-specific): images warped by a flow field and the random smooth flows
of the temporal regulariser (loss.w_temporal); the temporal-consistency metric warps with it.
"""

from ganstyle_jax.ops.conv import DEFAULT, ConvPolicy, Path, conv2d
from ganstyle_jax.ops.upsample import conv_transpose_x2

__all__ = ["DEFAULT", "ConvPolicy", "Path", "conv2d", "conv_transpose_x2"]
