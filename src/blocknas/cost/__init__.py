"""Cost model: MACs, params and latency of specs, and latency tables. Reads spaces only."""
