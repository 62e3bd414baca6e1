import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pytest  # noqa: E402

from segen_jax.viz_conv import conv_arithmetic, output_size  # noqa: E402


@pytest.mark.parametrize("i, k, s, p, d, o", [(5, 3, 1, 0, 1, 3), (5, 3, 1, 1, 1, 5),
                                              (5, 3, 2, 1, 1, 3), (7, 3, 1, 0, 2, 3),
                                              (6, 3, 2, 1, 1, 3)])
def test_output_size_matches_conv_arithmetic(i, k, s, p, d, o):
    assert output_size(i, k, s, p, d) == o


def test_figure_draws_input_taps_and_output_cells():
    fig = conv_arithmetic(5, 3, stride=2, padding=1, position=(1, 1))
    ax = fig.axes[0]
    # (5 + 2)² input cells, 3² taps, 3² output cells.
    assert len(ax.patches) == 49 + 9 + 9
    assert "output 3x3" in ax.get_xlabel() and "s=2" in ax.get_title()
    plt.close(fig)


@pytest.mark.parametrize("kwargs, match", [
    (dict(i=5, k=3, stride=0), "stride must be an int >= 1, got 0"),
    (dict(i=3, k=5), "larger than the padded input"),
    (dict(i=5, k=3, position=(3, 0)), r"position must lie in the 3x3 output"),
])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        conv_arithmetic(**kwargs)
