"""Great Expectations quality gates between the pipeline stages."""
