"""Distributions of durations in a scenario: talk, hold, wrap-up, patience, answer delay.

Each is a frozen value that draws from a ``random.Random`` it is given, so a
simulation's only source of chance is the one generator seeded by its caller.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True)
class Exponential:
    """Exponentially distributed seconds with the given mean (memoryless: Poisson-like)."""

    mean: float

    def sample(self, rng: random.Random) -> float:
        return rng.expovariate(1.0 / self.mean) if self.mean > 0 else 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class LogNormal:
    """Log-normal seconds given by their own mean and standard deviation (not the log's)."""

    mean: float
    sd: float
    mu: float = field(init=False)
    sigma: float = field(init=False)

    def __post_init__(self) -> None:
        # For X = exp(N(mu, sigma²)): E[X] = exp(mu + sigma²/2), Var[X] = (exp(sigma²) - 1) E[X]².
        sigma2 = math.log1p((self.sd / self.mean) ** 2)
        object.__setattr__(self, "sigma", math.sqrt(sigma2))
        object.__setattr__(self, "mu", math.log(self.mean) - sigma2 / 2.0)

    def sample(self, rng: random.Random) -> float:
        return rng.lognormvariate(self.mu, self.sigma)


@dataclass(frozen=True, slots=True, kw_only=True)
class Uniform:
    """Seconds drawn uniformly between ``low`` and ``high``."""

    low: float
    high: float

    @property
    def mean(self) -> float:
        return (self.low + self.high) / 2.0

    def sample(self, rng: random.Random) -> float:
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True, slots=True, kw_only=True)
class Constant:
    """Always the same number of seconds."""

    value: float

    @property
    def mean(self) -> float:
        return self.value

    def sample(self, rng: random.Random) -> float:
        return self.value


Distribution = Exponential | LogNormal | Uniform | Constant
