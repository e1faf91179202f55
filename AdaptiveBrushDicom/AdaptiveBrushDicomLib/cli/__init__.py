"""``abdicom``: one module per command group."""
