"""PySpark feature jobs: dbt marts in the warehouse -> feature Parquet in the lake."""
