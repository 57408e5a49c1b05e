"""Shared pytest configuration: hypothesis profiles.

Profiles are picked with the environment variable HYPOTHESIS_PROFILE:

- "ci" (default): few examples per property, no deadline, so the whole suite
  stays fast;
- "dev": many more examples, for hunting bugs locally
  (`HYPOTHESIS_PROFILE=dev pytest tests/`).

Property tests leave `max_examples` to the profile (they only set
`deadline=None`), so switching profiles scales all of them at once.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_RELAXED = [HealthCheck.too_slow, HealthCheck.data_too_large]

settings.register_profile("ci", max_examples=15, deadline=None, suppress_health_check=_RELAXED)
settings.register_profile("dev", max_examples=300, deadline=None, suppress_health_check=_RELAXED)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
