"""The suite's hypothesis profile: derandomized, so a re-run draws the same examples."""

import os

import pytest
from hypothesis import settings


@pytest.mark.skipif(
    os.environ.get("HYPOTHESIS_PROFILE", "derandomized") != "derandomized",
    reason="another hypothesis profile was chosen explicitly",
)
def test_hypothesis_is_derandomized_by_default():
    assert settings.default.derandomize is True
    assert settings.default.deadline is None
    assert settings.default.database is None
