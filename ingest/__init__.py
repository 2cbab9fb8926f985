"""Ingest: landing files in the raw contract -> raw tables, quarantine and audit."""
