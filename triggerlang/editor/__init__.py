"""Editors and coding agents (SPEC §14)."""
