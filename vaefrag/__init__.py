"""vaefrag: what the latent channels of VAE ensembles learned.

Bhattacharyya fingerprints of every latent channel, generalized NMI/VI between all channels
(Murphy, Dillavou & Bassett, arXiv:2405.21042), OPTICS hotspots, channel maps and a Dash dashboard.
"""

__version__ = "0.1.0"
