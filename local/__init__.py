"""Running the platform on one machine: the embedded PostgreSQL, the warehouse roles and the local runner."""
