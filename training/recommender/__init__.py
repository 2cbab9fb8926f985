"""Two-tower recommender: which customers to target for each product."""
