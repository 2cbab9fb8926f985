"""Publish: the plan and what an analyst needs to trust it, into the `published` schema."""
