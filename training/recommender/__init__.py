"""The recommender: which customers to target for each product (docs/recommender.md)."""
