"""Feast feature store: definitions over the Spark feature Parquet, apply/materialize, training sets.

`import feast` is slow (it imports torch), so only functions import this package's Feast modules.
"""
