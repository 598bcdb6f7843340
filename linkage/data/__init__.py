"""Small reference data shipped with the package (public-style frequency figures, no personal data)."""
