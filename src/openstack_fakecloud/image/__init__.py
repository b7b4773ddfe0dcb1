"""Glance v2: images seeded from configuration."""
