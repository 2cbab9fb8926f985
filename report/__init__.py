"""The plan report: one self-contained HTML file per published run (report/plan_report.py)."""
