"""Scoring plans against a synthetic market's ground truth: plan vs no promotion, a simple
rule and the oracle that knows the true demand curves."""
