"""Figure builders: they take arrays or an `analysis.Analysis`, never Dash state.

- `vaefrag.figures.paper`: the static matplotlib paper figure (`paper_figure`, `save_figure`).

Submodules are imported explicitly (``from vaefrag.figures.paper import paper_figure``) so that
importing one backend never pulls in the other.
"""
