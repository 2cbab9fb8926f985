"""Seeded synthetic market: landing files in the raw contract plus ground truth."""
