"""Checks for notebooks: assert a derivation numerically and print a verdict, not raw errors.

The last digits of a float differ between CPUs, and nbval compares a notebook's printed text
with the stored one, so a check prints the tolerance it met (`max |Δ| < 1e-05 ✓`) rather than
the error itself, and raises AssertionError (with the error) when the tolerance is not met.
"""
import numpy as np


def check_close(name: str, got, want, *, atol: float = 1e-5, rtol: float = 0.0) -> None:
    """Assert |got − want| <= atol + rtol·|want| elementwise and print `name: max |Δ| < atol ✓`.

    got, want: arrays of the same shape, or `want` a scalar that every element must match.
    """
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if want.ndim == 0:  # a scalar `want` is compared with every element of `got`
        want = np.broadcast_to(want, got.shape)
    if got.shape != want.shape:
        raise AssertionError(f"{name}: shapes differ: got {got.shape}, want {want.shape}")
    if not np.all(np.isfinite(got)):
        raise AssertionError(f"{name}: got non-finite values")
    error = np.abs(got - want)
    bound = atol + rtol * np.abs(want)
    if not np.all(error <= bound):
        worst = np.unravel_index(np.argmax(error - bound), error.shape)
        raise AssertionError(f"{name}: max |Δ| = {error.max():.3g} exceeds the tolerance "
                             f"(atol={atol:g}, rtol={rtol:g}); worst at index {tuple(map(int, worst))}")
    if atol == 0 and rtol == 0:
        print(f"{name}: max |Δ| = 0 ✓")
    elif rtol == 0:
        print(f"{name}: max |Δ| < {atol:g} ✓")
    else:
        relative = f"{rtol:g}·|want|"
        print(f"{name}: |Δ| < {relative if atol == 0 else f'{atol:g} + {relative}'} ✓")


def check_that(name: str, condition: bool, detail: str = "") -> None:
    """Assert a claim that is true or false and print `name ✓` (or raise with `detail`)."""
    if not bool(condition):
        raise AssertionError(f"{name}: failed{': ' + detail if detail else ''}")
    print(f"{name} ✓")
