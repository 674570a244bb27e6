"""Array interop at the sampler and metric boundaries: NumPy and CuPy (DLPack) -> torch.

``as_torch`` converts without copying where the producer allows it: a NumPy array via
``torch.from_numpy`` (shares memory), any ``__dlpack__`` producer (CuPy, JAX, ...) via
``torch.from_dlpack`` (shares device memory, so a CuPy array stays on its GPU). Tensors pass
through unchanged; anything else is returned as is so the caller's own check reports it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor


def as_torch(array: Any) -> Tensor | Any:
    """A torch view of ``array`` (Tensor, NumPy or DLPack producer); other objects unchanged."""
    if isinstance(array, Tensor):
        return array
    if isinstance(array, np.ndarray):
        if array.dtype == object:
            return array
        return torch.from_numpy(np.ascontiguousarray(array))
    if hasattr(array, "__dlpack__") and hasattr(array, "__dlpack_device__"):
        return torch.from_dlpack(array)
    return array
