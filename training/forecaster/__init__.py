"""Weekly demand forecaster: a global, price-monotone quantile model across products."""
