"""Data sources, streams and the embedded synthetic dataset.

TensorFlow (tf.data, TFDS) enters the package only through `tf_quiet`, which `sources`,
`stream` and `synthetic` import: `decode` and the source names below need no TF, so the
models, the families, stylizing and the benchmarks start without importing it.
"""

KNOWN_ANSWER = "synthetic:known_answer"  # painting_k(content), derived per batch
SAME_STYLE = "synthetic:same_style"  # synthetic photos painted in each style image's style
