"""The seeding policy of the resampling steps (rarefaction of the diversity stage, the bootstraps of the
diversity curves): each sample's generator is seeded from the configured seed and the sample id, so a
sample's result does not depend on which other samples are in the run, nor on their order."""

from __future__ import annotations

import zlib


def sample_seed(seed: int, sample: str) -> int:
    """A per-sample seed: the configured seed mixed with a stable hash (CRC-32) of the sample id."""
    return (seed * 1_000_003 + zlib.crc32(sample.encode())) % 2**32
