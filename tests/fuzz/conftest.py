"""Hypothesis profiles of the fuzz suite (issue 12, "hostile inputs").

``ci`` (the default): 20 examples per test, derandomized (the same examples on every run),
no deadline; the whole suite runs in well under a minute on 2 cores. ``long``: hundreds of
random examples, used by the tests marked ``@pytest.mark.slow`` (``pytest -m slow
tests/fuzz``); ``HYPOTHESIS_PROFILE=long`` runs every fuzz test that long.
"""

import os

from hypothesis import HealthCheck, settings

_COMMON = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}
settings.register_profile("ci", max_examples=20, derandomize=True, **_COMMON)
settings.register_profile("long", max_examples=300, **_COMMON)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
