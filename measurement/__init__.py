"""After a plan week: what the plan really did (treatment vs holdout, forecast vs actual)."""
