"""Read and write .safetensors files as numpy arrays, with the `safetensors` package's numpy API (no torch needed).

Corrupt files, and tensors of a dtype numpy lacks (bfloat16), raise ValueError, so callers catch one kind of error
whatever the package raises. As the package does,
a 0-d array is stored with shape [1] (only BN's `num_batches_tracked` counters are 0-d, and exports drop them).
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file


def write(path: Path, tensors: dict[str, np.ndarray], metadata: dict[str, str] | None = None) -> None:
    save_file({name: np.ascontiguousarray(a) for name, a in tensors.items()}, str(path), metadata=metadata)


def read(path: Path) -> dict[str, np.ndarray]:
    try:
        tensors = load_file(str(path))
    except (SafetensorError, TypeError) as e:  # TypeError: "data type 'bfloat16' not understood"
        raise ValueError(f"{path}: {e}") from e
    # With ml_dtypes installed (onnx brings it) numpy reads bfloat16 after all; refuse it the same way either way.
    bfloat16 = [name for name, a in tensors.items() if a.dtype.name == "bfloat16"]
    if bfloat16:
        raise ValueError(f"{path}: data type 'bfloat16' is not supported (tensor {bfloat16[0]}); save float32")
    return tensors
