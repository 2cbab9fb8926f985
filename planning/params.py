"""The business parameters of one weekly plan, validated once, used by planning and publish."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import date

DISCOUNT_LEVELS = (0.0, 0.1, 0.2, 0.3, 0.4)


class PlanParamError(ValueError):
    """A plan parameter is out of its allowed range."""


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
        checks = [
            (self.plan_week.weekday() == 0, f"plan_week {self.plan_week} is not a Monday; give the Monday that starts the plan week"),
            (self.budget >= 0, f"budget {self.budget} is negative; give an amount >= 0"),
            (0 <= self.max_discount < 1, f"max_discount {self.max_discount} must be in [0, 1), e.g. 0.3 for 30% off"),
            (0 <= self.margin_floor < 1, f"margin_floor {self.margin_floor} must be in [0, 1), e.g. 0.05 for a 5% margin"),
            (self.max_promos_per_category >= 0, "max_promos_per_category must be >= 0"),
            (self.audience_size >= 1, "audience_size must be >= 1 customer per promoted product"),
            (0 <= self.holdout_fraction < 1, f"holdout_fraction {self.holdout_fraction} must be in [0, 1)"),
        ]
        for ok, message in checks:
            if not ok:
                raise PlanParamError(message)

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
