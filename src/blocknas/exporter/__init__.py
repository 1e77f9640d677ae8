"""Conversion to deploy form, packaging and verification of exported networks."""
