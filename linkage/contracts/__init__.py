"""Typed contracts for every hand-over between roles (one model + reader per package)."""
