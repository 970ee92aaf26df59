"""Hypothesis profiles: ``dev`` for local runs; under CI Hypothesis picks ``ci`` itself."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("dev", max_examples=100)

if os.environ.get("CI") != "true":
    settings.load_profile("dev")
