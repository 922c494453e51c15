"""Dash callbacks by theme; each module has plain functions (tested directly) and `register(app, cfg)`."""
