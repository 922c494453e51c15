"""The Dash dashboard (the only package that imports dash). `create_app` builds the app; `serve` is
the `vaefrag serve` command and `bench` the `vaefrag bench dashboard` script.

`create_app` and `pick_default` are imported on first use, so that `serve` can import dash its own
way first (`serve.import_dash_for_serving`).
"""
__all__ = ["create_app", "pick_default"]


def __getattr__(name: str):
    if name in __all__:
        from vaefrag.dashboard import app

        return getattr(app, name)
    raise AttributeError(f"module 'vaefrag.dashboard' has no attribute {name!r}")
