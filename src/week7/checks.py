"""Test cells turn results into plain data; the grader compares them outside the student's kernel.

An exercise's test cell calls the student's functions on its cases and hands every result to `record`:

    from week7.checks import record, raised
    record("mask n=10 w=2", sparse_mask(10, 2, 11, 0))       # a bool tensor, kept with its dtype and shape
    record("bad n=0", raised(sparse_mask, 0, 1, 1, 1))        # "ValueError", or "" when nothing was raised

`record` only *emits* the value, as a display output of MIME type `MIME` holding JSON (numbers, strings, lists,
dicts with string keys, arrays as base64 of their little-endian bytes with a fixed dtype and shape). When an
instructor grades, nbgrader executes the notebook in the sandbox and the grader, in its own process, reads these
outputs (`autograder/compare.py`: json and numpy.frombuffer, never pickle or eval) and compares each case with
what the instructor's solution recorded for the same case in a clean kernel. A test cell scores its points when
every case the solution recorded is recorded with an equal value (floats within the tolerance the *solution's*
call gave); nothing else decides, so code that patches numpy, torch, builtins or this module can change what is
emitted but cannot change the comparison: the only way to score is to emit the right values, which means
computing them.

In the student's own run the visible asserts of a test cell explain a failure; `record` itself checks nothing.
"""

from __future__ import annotations

import base64
import json
import math
import sys
from collections.abc import Callable, Mapping
from typing import Any

MIME = "application/vnd.week7.record.v1+json"
DTYPES = ("bool", "int8", "int16", "int32", "int64", "uint8", "float16", "float32", "float64")
MAX_DEPTH = 8


def _float(x: float) -> float | str:
    x = float(x)
    if math.isnan(x):
        return "nan"
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    return x


def encode(value: Any, _depth: int = 0) -> dict:
    """Plain data for `value`: {"t": kind, ...}. TypeError for anything that is not plain data."""
    import numpy as np

    if _depth > MAX_DEPTH:
        raise TypeError(f"record(): nested more than {MAX_DEPTH} levels deep")
    if value is None:
        return {"t": "none"}
    if isinstance(value, (bool, np.bool_)):
        return {"t": "bool", "v": bool(value)}
    if isinstance(value, (int, np.integer)):
        return {"t": "int", "v": int(value)}
    if isinstance(value, (float, np.floating)):
        return {"t": "float", "v": _float(value)}
    if isinstance(value, str):
        return {"t": "str", "v": str(value)}
    if isinstance(value, (list, tuple)):
        return {"t": "list", "v": [encode(x, _depth + 1) for x in value]}
    if isinstance(value, Mapping):
        if not all(isinstance(k, str) for k in value):
            raise TypeError("record(): dict keys must be strings")
        return {"t": "dict", "v": [[str(k), encode(value[k], _depth + 1)] for k in sorted(value)]}
    kind = "ndarray"
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(value, torch.Tensor):
        kind = "tensor"
        t = value.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.float()
        value = t.numpy()
    if isinstance(value, np.ndarray):
        name = value.dtype.name
        if name not in DTYPES:
            raise TypeError(f"record(): arrays of dtype {name} are not plain data (use one of {', '.join(DTYPES)})")
        arr = np.ascontiguousarray(value).astype(value.dtype.newbyteorder("<"), copy=False)
        return {"t": "array", "kind": kind, "dtype": name, "shape": [int(s) for s in arr.shape],
                "b64": base64.b64encode(arr.tobytes()).decode("ascii")}
    raise TypeError(f"record(): {type(value).__name__} is not plain data (numbers, strings, lists, dicts with "
                    f"string keys, numpy arrays or torch tensors)")


def record(case: str, value: Any, *, rtol: float = 1e-4, atol: float = 1e-6) -> None:
    """Emit `value` for the grader under the name `case` (unique within its test cell).

    rtol and atol are the tolerance for floats; only those given in the instructor's solution count.
    """
    rec = {"case": str(case), "value": encode(value), "rtol": float(rtol), "atol": float(atol)}
    try:
        from IPython import get_ipython
        from IPython.display import display
    except ImportError:  # plain python (a probe process): one line on stdout
        get_ipython = None  # type: ignore[assignment]
    if get_ipython is not None and get_ipython() is not None:
        display({MIME: rec}, raw=True)
    else:
        sys.stdout.write("W7RECORD " + json.dumps(rec) + "\n")
        sys.stdout.flush()


def raised(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> str:
    """The class name of the exception `fn(*args, **kwargs)` raises, or "" when it returns."""
    try:
        fn(*args, **kwargs)
    except Exception as e:  # noqa: BLE001 - the name is the result
        return type(e).__name__
    return ""
