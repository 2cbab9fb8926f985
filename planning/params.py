"""The business parameters of one weekly plan, validated once, used by planning and publish."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

DISCOUNT_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4)

#: Allowed range of every numeric parameter (inclusive), shared by the DAG's Params and here.
BOUNDS: dict[str, tuple[float, float]] = {
    "budget": (0, 1e9),
    "max_discount": (0, 0.9),
    "margin_floor": (0, 0.9),
    "max_promos_per_category": (0, 10_000),
    "audience_size": (1, 1_000_000),
    "holdout_fraction": (0, 0.5),
    "seed": (0, 2**31 - 1),
}
INTEGER_PARAMS = ("max_promos_per_category", "audience_size", "seed")
HINTS = {
    "budget": "the discount money to give away, e.g. 5000",
    "max_discount": "e.g. 0.3 for 30% off",
    "margin_floor": "e.g. 0.05 for a 5% margin",
    "max_promos_per_category": "promoted products per category",
    "audience_size": "customers targeted per promoted product",
    "holdout_fraction": "e.g. 0.1 keeps 10% of targeted customers untreated",
    "seed": "any whole number",
}


class PlanParamError(ValueError):
    """A plan parameter is out of its allowed range."""


def check_value(name: str, value) -> float | int:
    """The value of parameter `name` as a number within BOUNDS, or a one-line PlanParamError."""
    low, high = BOUNDS[name]
    integer = name in INTEGER_PARAMS
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise PlanParamError(f"{name} {value!r} is not a number; give {HINTS[name]}.")
    try:
        number = int(value) if integer and not isinstance(value, float) else float(value)
    except ValueError:
        raise PlanParamError(f"{name} {value!r} is not a number; give {HINTS[name]}.") from None
    if integer and (not float(number).is_integer()):
        raise PlanParamError(f"{name} {value!r} is not a whole number; give {HINTS[name]}.")
    if not (low <= number <= high):  # also refuses NaN
        raise PlanParamError(
            f"{name} {value!r} is outside [{low:g}, {high:g}]; give {HINTS[name]}."
        )
    return int(number) if integer else float(number)


@dataclass(frozen=True)
class PlanParams:
    plan_week: date
    budget: float = 5000.0
    max_discount: float = 0.3
    margin_floor: float = 0.05
    max_promos_per_category: int = 5
    audience_size: int = 200
    holdout_fraction: float = 0.1
    seed: int = 42

    def __post_init__(self) -> None:
        if self.plan_week.weekday() != 0:
            raise PlanParamError(
                f"plan_week {self.plan_week} is not a Monday; give the Monday that starts the "
                "plan week."
            )
        for name in BOUNDS:
            check_value(name, getattr(self, name))

    @property
    def discount_levels(self) -> list[float]:
        """Candidate discount depths, 0 (no promotion) included, capped at max_discount."""
        return [d for d in DISCOUNT_LEVELS if d <= self.max_discount + 1e-9]

    @classmethod
    def from_run(cls, run: dict, plan_week: date | None = None) -> PlanParams:
        """The plan parameters of a run dict (see promoflow.runs); plan_week overrides."""
        return cls(
            plan_week=plan_week or date.fromisoformat(run["plan_week"]),
            budget=run["budget"], max_discount=run["max_discount"],
            margin_floor=run["margin_floor"],
            max_promos_per_category=run["max_promos_per_category"],
            audience_size=run["audience_size"], holdout_fraction=run["holdout_fraction"],
            seed=run["seed"],
        )

    def as_record(self) -> dict:
        record = asdict(self)
        record["plan_week"] = self.plan_week.isoformat()
        return record
