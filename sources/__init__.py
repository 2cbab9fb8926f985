"""Data sources that write landing files in the raw contract: the synthetic market and importers of real data sets."""
