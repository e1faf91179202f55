"""Demo and test helpers (not part of the shipped extension): phantom data, peer tools, a demo run."""
