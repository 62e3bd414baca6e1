import numpy as np
import pytest

from segen_jax.verify import check_close, check_that


def test_check_close_prints_the_tolerance_not_the_error(capsys):
    check_close("sum", np.array([1.0, 2.0]), np.array([1.0, 2.0 + 1e-7]), atol=1e-5)
    assert capsys.readouterr().out == "sum: max |Δ| < 1e-05 ✓\n"


def test_check_close_relative(capsys):
    check_close("big", 1000.0 + 1e-3, 1000.0, atol=0, rtol=1e-5)
    assert capsys.readouterr().out == "big: |Δ| < 1e-05·|want| ✓\n"
    check_close("both", 1.0 + 1e-3, 1.0, atol=1e-4, rtol=1e-3)
    assert capsys.readouterr().out == "both: |Δ| < 0.0001 + 0.001·|want| ✓\n"


def test_check_close_exact(capsys):
    check_close("same", [1.0, 2.0], [1.0, 2.0], atol=0)
    assert capsys.readouterr().out == "same: max |Δ| = 0 ✓\n"
    with pytest.raises(AssertionError, match="exceeds"):
        check_close("differs", [1.0], [1.0 + 1e-6], atol=0)


def test_check_close_fails_with_the_error_and_where():
    with pytest.raises(AssertionError, match=r"g: max \|Δ\| = 0.1 exceeds .* worst at index \(1,\)"):
        check_close("g", [0.0, 0.1], [0.0, 0.0], atol=1e-3)


def test_check_close_scalar_want_applies_to_every_element(capsys):
    check_close("zeros", np.zeros((2, 3)), 0.0, atol=1e-9)
    assert capsys.readouterr().out == "zeros: max |Δ| < 1e-09 ✓\n"
    with pytest.raises(AssertionError, match=r"worst at index \(1, 2\)"):
        check_close("one off", np.array([[0, 0, 0], [0, 0, 1.0]]), 0.0, atol=1e-3)


def test_check_close_shape_and_nan():
    with pytest.raises(AssertionError, match="shapes differ"):
        check_close("s", np.zeros(2), np.zeros(3))
    with pytest.raises(AssertionError, match="non-finite"):
        check_close("n", [np.nan], [0.0])


def test_check_that(capsys):
    check_that("positive", 3 > 0)
    assert capsys.readouterr().out == "positive ✓\n"
    with pytest.raises(AssertionError, match="negative: failed: 3 is not < 0"):
        check_that("negative", 3 < 0, "3 is not < 0")
