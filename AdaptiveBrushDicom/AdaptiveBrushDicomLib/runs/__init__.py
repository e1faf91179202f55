"""Optimization runs and gold standards: layout, results.json, series naming, migration."""
