"""The canonical sweeps shipped in benchmarks/sweeps/ are valid: every arm expands to a valid config."""

from pathlib import Path

import pytest

from paramviz.sweep.spec import expand, load_sweep

SWEEPS = sorted((Path(__file__).resolve().parents[2] / "benchmarks" / "sweeps").glob("*.toml"))


def test_there_are_canonical_sweeps():
    assert len(SWEEPS) >= 5


@pytest.mark.parametrize("path", SWEEPS, ids=lambda p: p.name)
def test_canonical_sweep_expands(path):
    spec = load_sweep(path)
    arms = expand(spec)
    assert arms and spec.description
    for arm in arms:
        for image in getattr(arm.config, "styles", ()):
            assert image.startswith("sample:") or Path(image).is_file(), image
