"""Departments' and regions' scores (امتیاز عملکرد): how they answer citizens, on the same
figures for all, adjusted so that a unit with hard services or few requests is not ranked by
its luck.

Four components, each a rate between 0 and 1 where higher is better:

- timeliness: of the requests that fell due, the share answered by their deadline (an answer
  after it, or none while the deadline has passed, is late);
- resolution: of the requests handled, the share resolved;
- reopening: of the resolved, the share never reopened;
- rating: the citizens' mean rating, from 1 (0) to 5 (1).

Service mix (indirect standardisation): each service has a city-wide rate per component; a
unit's *expected* rate is the mean of those over its own requests, and its *adjusted* rate
is the city's rate plus what it did better or worse than expected, so a department of hard
services (pruning trees, where most answers are late everywhere) is measured against hard
services, not against one that issues certificates.

Workload (credibility): the adjusted rate is blended with the city's rate in proportion to the
requests behind it, n / (n + k), k being `credibility` in the weights; a unit with three
requests is not first or last by chance, one with thousands keeps its own figure.

The score is 100 × the weighted mean of the adjusted components (weights from configuration,
README "Citizen requests"). Units are ranked by score, then by the requests they handled, then
by name.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = [
    "COMPONENTS",
    "Component",
    "ScoreWeights",
    "Tally",
    "UnitScore",
    "rank_units",
]

COMPONENTS = ("timeliness", "resolution", "reopening", "rating")


@dataclass(frozen=True, slots=True)
class ScoreWeights:
    """How much each component counts, and the credibility constant k (in requests)."""

    timeliness: float = 0.35
    resolution: float = 0.25
    reopening: float = 0.15
    rating: float = 0.25
    credibility: float = 20.0

    def __post_init__(self) -> None:
        weights = [self.of(name) for name in COMPONENTS]
        if any(weight < 0 for weight in weights) or sum(weights) <= 0:
            raise ValueError("score weights must be non-negative and not all zero")
        if self.credibility < 0:
            raise ValueError("credibility must be non-negative")

    def of(self, component: str) -> float:
        weight: float = getattr(self, component)
        return weight


@dataclass(frozen=True, slots=True)
class Tally:
    """One unit's requests of one service over the period, counted."""

    unit: str  # a department's code, or a region's number as text
    service: str
    handled: int  # routed to the unit (not referred outside the municipality)
    fell_due: int  # answered, or unanswered past the deadline
    on_time: int  # answered by the deadline
    resolved: int
    not_reopened: int  # resolved and never reopened
    rated: int
    rating_points: int  # Σ (rating − 1), from 0 to 4 each


@dataclass(frozen=True, slots=True)
class Component:
    """One component of a unit's score: what it did, what its service mix would predict,
    and the figure that counts."""

    name: str
    weight: float
    count: int  # the requests behind it
    observed: float | None  # None: no request of the unit's counts here
    expected: float | None
    adjusted: float  # mix-adjusted, then blended with the city's rate by credibility


@dataclass(frozen=True, slots=True)
class UnitScore:
    unit: str
    rank: int
    score: float  # 0 to 100
    requests: int
    components: tuple[Component, ...]


# For each component: (successes, trials) of a tally; rating counts each rated request as
# four trials of which its points succeeded.
def _counts(tally: Tally, component: str) -> tuple[float, float, int]:
    """(successes, trials, requests behind them) of a tally for a component."""
    if component == "timeliness":
        return tally.on_time, tally.fell_due, tally.fell_due
    if component == "resolution":
        return tally.resolved, tally.handled, tally.handled
    if component == "reopening":
        return tally.not_reopened, tally.resolved, tally.resolved
    return tally.rating_points, 4 * tally.rated, tally.rated


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def rank_units(tallies: Iterable[Tally], weights: ScoreWeights) -> list[UnitScore]:
    """Every unit that handled a request, scored and ranked (1 is best; equal scores and
    equal volumes share no rank: the name decides)."""
    tallies = [tally for tally in tallies if tally.handled > 0]
    by_unit: dict[str, list[Tally]] = defaultdict(list)
    for tally in tallies:
        by_unit[tally.unit].append(tally)

    # City-wide rates, overall and per service, for each component.
    city: dict[str, float | None] = {}
    per_service: dict[tuple[str, str], float] = {}
    for component in COMPONENTS:
        totals: dict[str, list[float]] = defaultdict(lambda: [0.0, 0.0])
        for tally in tallies:
            successes, trials, _ = _counts(tally, component)
            totals[tally.service][0] += successes
            totals[tally.service][1] += trials
        all_successes = sum(value[0] for value in totals.values())
        all_trials = sum(value[1] for value in totals.values())
        city[component] = all_successes / all_trials if all_trials else None
        for service, (successes, trials) in totals.items():
            if trials:
                per_service[(component, service)] = successes / trials

    scored: list[tuple[float, int, str, tuple[Component, ...]]] = []
    for unit, own in by_unit.items():
        components = []
        for component in COMPONENTS:
            city_rate = city[component]
            if city_rate is None:  # nobody has a figure here (no ratings yet): not counted
                continue
            successes = trials = expected_successes = 0.0
            count = 0
            for tally in own:
                s, t, n = _counts(tally, component)
                successes += s
                trials += t
                count += n
                if t:
                    expected_successes += t * per_service[(component, tally.service)]
            observed: float | None
            expected: float | None
            if trials:
                observed = successes / trials
                expected = expected_successes / trials
                mix_adjusted = _clamp(city_rate + observed - expected)
            else:
                observed = expected = None
                mix_adjusted = city_rate
            k = weights.credibility
            credible = count / (count + k) if count + k else 1.0
            adjusted = credible * mix_adjusted + (1 - credible) * city_rate
            components.append(
                Component(
                    name=component,
                    weight=weights.of(component),
                    count=count,
                    observed=None if observed is None else round(observed, 4),
                    expected=None if expected is None else round(expected, 4),
                    adjusted=round(adjusted, 4),
                )
            )
        total_weight = sum(c.weight for c in components)
        score = (
            100 * sum(c.weight * c.adjusted for c in components) / total_weight
            if total_weight
            else 0.0
        )
        requests = sum(tally.handled for tally in own)
        scored.append((round(score, 2), requests, unit, tuple(components)))

    scored.sort(key=lambda entry: (-entry[0], -entry[1], entry[2]))
    return [
        UnitScore(unit=unit, rank=index, score=score, requests=requests, components=components)
        for index, (score, requests, unit, components) in enumerate(scored, start=1)
    ]
