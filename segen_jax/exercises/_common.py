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
