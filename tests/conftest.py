"""Shared test set-up: hypothesis profiles and the repository root on sys.path (for solutions/
and experiments/).

Profiles: "ci" (the default under CI=true or via HYPOTHESIS_PROFILE=ci) keeps property tests
small so `make test` stays well inside CI's time limit; "dev" explores more; choose with
HYPOTHESIS_PROFILE=dev.
"""
import os
import pathlib
import sys

from hypothesis import HealthCheck, settings

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

settings.register_profile("ci", max_examples=25, deadline=None, derandomize=True,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("dev", max_examples=200, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci" if os.environ.get("CI") else "dev"))
