"""The Dash dashboard (the only package that imports dash). `create_app` builds the app."""
from vaefrag.dashboard.app import create_app, pick_default

__all__ = ["create_app", "pick_default"]
