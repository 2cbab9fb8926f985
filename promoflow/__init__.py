"""Shared code for the promotion planning platform: settings, warehouse access, logging."""
