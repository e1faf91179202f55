"""Comparing segmentations: metrics, segment matching, trial-vs-gold tables, plots."""
