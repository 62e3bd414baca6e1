"""The verdict line every checker prints, and calling a student's function safely."""


def _verdict(ok: bool, message: str) -> bool:
    print(("✓ correct: " if ok else "✗ not yet: ") + message)
    return ok


def _call(fn, *args):
    """(result, None) or (None, hint) when the student's function raises."""
    try:
        return fn(*args), None
    except NotImplementedError:
        return None, "not implemented yet (the function still raises NotImplementedError)."
    except Exception as err:  # noqa: BLE001 - any error becomes a hint for the student
        return None, f"calling it raised {type(err).__name__}: {err}"


def _scalar(out):
    """(float, None) when the student's result is one finite number, else (None, hint)."""
    import numpy as np

    if out is None:
        return None, "return one number, got None (is a `return` missing?)."
    try:
        value = np.asarray(out, dtype=np.float64)
    except (TypeError, ValueError):
        return None, f"return one number, got {type(out).__name__}."
    if value.ndim != 0 and value.size != 1:
        return None, f"return one number (sum or average), got an array of shape {value.shape}."
    value = float(value.reshape(()))
    if not np.isfinite(value):
        return None, f"the result is {value}, not a finite number."
    return value, None
