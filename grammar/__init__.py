"""The triggerlang grammar, shipped as package data (see pyproject.toml)."""
