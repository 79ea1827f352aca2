"""Deterministic derived randomness: the same (seed, key...) always gives the same number.

Issue details (texts, custom-field values, comments, worklogs) are *derived* on demand from such keys
instead of being stored, so a site with 200 000 issues costs a few numpy columns of memory.
"""
from __future__ import annotations

import random

import numpy as np

MASK64 = (1 << 64) - 1
_GOLDEN = 0x9E3779B97F4A7C15
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB


def mix(*parts: int) -> int:
    """splitmix64 over the parts: a well-spread 64-bit integer."""
    x = 0
    for part in parts:
        x = ((x ^ (part & MASK64)) + _GOLDEN) & MASK64
        x = ((x ^ (x >> 30)) * _M1) & MASK64
        x = ((x ^ (x >> 27)) * _M2) & MASK64
        x ^= x >> 31
    return x


def mix_array(parts_a: int, values: np.ndarray, parts_c: int = 0) -> np.ndarray:
    """Vectorised `mix(parts_a, value, parts_c)` over a uint64/int64 array (same results as `mix`)."""
    with np.errstate(over="ignore"):
        golden, m1, m2 = np.uint64(_GOLDEN), np.uint64(_M1), np.uint64(_M2)

        def step(x: np.ndarray, part) -> np.ndarray:
            x = (x ^ part) + golden
            x = (x ^ (x >> np.uint64(30))) * m1
            x = (x ^ (x >> np.uint64(27))) * m2
            return x ^ (x >> np.uint64(31))

        x = step(np.zeros(len(values), dtype=np.uint64), np.uint64(parts_a & MASK64))
        x = step(x, values.astype(np.uint64))
        return step(x, np.uint64(parts_c & MASK64))


def rng(*parts: int) -> random.Random:
    """A private Random stream for one derived entity (an issue's texts, one comment, ...)."""
    return random.Random(mix(*parts))


def hex_id(*parts: int, length: int = 24) -> str:
    """`length` hex digits derived from the parts."""
    digits = ""
    counter = 0
    while len(digits) < length:
        digits += "%016x" % mix(*parts, counter)
        counter += 1
    return digits[:length]


def uuid_like(*parts: int) -> str:
    h = "%032x" % (mix(*parts) << 64 | mix(*parts, 2))
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:32]}"


class Bits:
    """Cheap derived choices: pops bits off one big random integer drawn for a key (no Random per choice).

    Rendering an issue makes ~30 small choices; drawing 1024 bits at once and shifting them off is several
    times cheaper than calling a Random method or a hash per choice.
    """

    __slots__ = ("_random", "_value", "_left")

    def __init__(self, *parts: int):
        self._random = random.Random(mix(*parts) if len(parts) > 1 else parts[0])
        self._value = self._random.getrandbits(1024)
        self._left = 1024

    def take(self, bits: int) -> int:
        if self._left < bits:
            self._value = self._random.getrandbits(1024)
            self._left = 1024
        value = self._value & ((1 << bits) - 1)
        self._value >>= bits
        self._left -= bits
        return value

    def below(self, n: int) -> int:
        """0 <= value < n (n up to 65536; the tiny modulo bias does not matter here)."""
        return self.take(16) % n

    def chance(self, p: float) -> bool:
        return self.take(10) < p * 1024

    def pick(self, pool):
        return pool[self.take(16) % len(pool)]
