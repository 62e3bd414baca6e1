"""segen-jax: image segmentation and generation in JAX, the library of the course.

Subpackages are imported on use (`from segen_jax import data, viz`), so `import segen_jax`
stays cheap.
"""
import os

__version__ = "0.1.0"


def full_mode() -> bool:
    """True when the environment variable SEGEN_FULL is "1": the notebooks' long (GPU) runs.

    The default (unset or "0") selects the runs that fit each chapter's CPU time budget.
    """
    value = os.environ.get("SEGEN_FULL", "0").strip()
    if value not in ("", "0", "1"):
        raise ValueError(f"SEGEN_FULL must be '0' or '1', got {value!r}")
    return value == "1"


def versions() -> dict:
    """Versions of Python and of the libraries the course depends on, and JAX's devices."""
    import platform

    import flax
    import jax
    import matplotlib
    import numpy
    import optax

    return {
        "python": platform.python_version(),
        "segen_jax": __version__,
        "jax": jax.__version__,
        "flax": flax.__version__,
        "optax": optax.__version__,
        "numpy": numpy.__version__,
        "matplotlib": matplotlib.__version__,
        "devices": ", ".join(sorted({f"{d.platform}:{d.device_kind}" for d in jax.devices()})),
    }
