"""Torch VAEs: member-batched networks (:mod:`.networks`) and objectives (:mod:`.objectives`).

``FAMILIES`` maps a family name (a CLI choice) to its objective; ``make_spec`` describes a network
and ``EnsembleVAE(spec, K)`` builds K independent members evaluated as one model.
"""
from vaefrag.models.networks import EnsembleVAE, Member, make_spec
from vaefrag.models.objectives import FAMILIES, Objective, make_objective

__all__ = ["EnsembleVAE", "Member", "make_spec", "FAMILIES", "Objective", "make_objective"]
