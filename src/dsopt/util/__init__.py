"""Helpers with no dsopt dependencies: atomic file writes and parameter validation."""
