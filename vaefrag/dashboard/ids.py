"""Every component id of the dashboard, in one place.

Callbacks and tests refer to components only through these names. Ids are plain strings
(prefixed ``vf-``) so the browser tests can find them as ``#vf-...`` CSS selectors.
"""
from __future__ import annotations

# --- page state -------------------------------------------------------------------------------
URL = "vf-url"                      # dcc.Location: ?ensemble=..&measure=..&hotspot=.. (bookmarks)
PENDING = "vf-pending"              # dcc.Store: request that is not cached yet (starts the job)
ANALYSIS = "vf-analysis"            # dcc.Store: {"ensemble", "params", "token"} of a loaded analysis
SELECTION = "vf-selection"          # dcc.Store: the one shared selection (see selection.py)
HIGHLIGHT = "vf-highlight"          # dcc.Store: the selection the linked views draw, set once the
                                    # traversals are shown (what the user clicked for comes first)
#: HIGHLIGHT as the page is first drawn (nothing selected, the figures as served): the linked views
#: have nothing to patch. Dash still calls their selection callbacks once on load (the store is an
#: output of an initial callback); they answer no_update instead of redrawing the same figure.
HIGHLIGHT_AS_SERVED = {"as_served": True}
URL_QUERY = "vf-url-query"          # dcc.Store: URL.search relayed (`callbacks.url`), not the page's own empty query
URL_STATE = "vf-url-state"          # dcc.Store: dummy output of the clientside URL writer
URL_POP = "vf-url-pop"              # dcc.Store: the query string after Back / Forward (popstate listener)
CLIENT = "vf-client"                # dcc.Store: this page's client id (random; names its job subscriptions)
#: each job panel also has "vf-job-<kind>" (store of its job id) and "vf-job-<kind>-poll" (dcc.Interval),
#: made by `callbacks.jobs.components` for kind in analysis, spaces, fusion, compare

# --- header / controls ------------------------------------------------------------------------
ENSEMBLE = "vf-ensemble"            # dcc.Dropdown of ensembles
ENSEMBLE_INFO = "vf-ensemble-info"  # short description of the open ensemble
MEASURE = "vf-measure"              # dcc.RadioItems nmi / vi: the distance OPTICS clusters (recomputes)
INFO_THRESHOLD = "vf-info-threshold"
MIN_SAMPLES = "vf-min-samples"
XI = "vf-xi"
MIN_NMI = "vf-min-nmi"              # smallest mean NMI within a hotspot (min_nmi)
PRESET = "vf-preset"                # dcc.Dropdown default / paper: fills min_samples, xi, min_nmi
MAP_METHOD = "vf-map-method"        # dcc.RadioItems umap / mds (which precomputed map to show)
MAP_COLOR = "vf-map-color"          # dcc.Dropdown hotspot / model / info / factor:<j>
APPLY = "vf-apply"                  # button: recompute with the chosen parameters
CANCEL = "vf-cancel"                # button: cancel the running analysis
PROGRESS = "vf-progress"            # html.Progress of the background analysis
PROGRESS_TEXT = "vf-progress-text"
JOB_PANEL = "vf-job-panel"          # container shown while a job runs
STATUS = "vf-status"                # status / error alert area
UPLOAD = "vf-upload"                # dcc.Upload of a posteriors .npz
UPLOAD_STATUS = "vf-upload-status"  # alert for the upload (error or success)
CLEAR = "vf-clear"                  # button: clear the selection
CHANNEL_SEARCH = "vf-channel-search"  # dcc.Input: type a channel (m5:z2) to select it
CHANNEL_SEARCH_MSG = "vf-channel-search-msg"  # error beside it (no such channel, below the threshold)


def error_id(control: str) -> str:
    """Id of the error message shown beside input ``control`` (empty when its value is valid)."""
    return f"{control}-error"

# --- views --------------------------------------------------------------------------------------
MATRIX = "vf-matrix"                # dcc.Graph: reachability + ordered matrix + factor NMI
MATRIX_MEASURE = "vf-matrix-measure"  # dcc.RadioItems nmi / vi: what the matrix shows (instant)
MAP = "vf-map"                      # dcc.Graph: channel map
HOTSPOTS = "vf-hotspots"            # dash_ag_grid.AgGrid of hotspots (row id = hotspot id)
MODELS = "vf-models"                # dash_ag_grid.AgGrid of models (row id = model)
MODEL_FILTER = "vf-model-filter"    # dcc.Input: quick filter of the model table
HELP = "vf-help"                    # html.Details: what NMI, VI, reachability, ... mean
SELECTION_INFO = "vf-selection-info"

# --- traversals ---------------------------------------------------------------------------------
TRAVERSALS = "vf-traversals"        # container of traversal image cards
TRAV_STEPS = "vf-trav-steps"
TRAV_RANGE = "vf-trav-range"
TRAV_SEED = "vf-trav-seed"
TRAV_NBASE = "vf-trav-nbase"
TRAV_BASES = "vf-trav-bases"        # dcc.Store: picked fingerprint indices (None = random with seed)
BASE_STRIP = "vf-base-strip"        # strip of fingerprint thumbnails to pick bases from
BASE_RANDOM = "vf-base-random"      # button: back to random bases
TRAV_IMAGE = "vf-trav-image"        # class name of every traversal <img> (and vector-output graph)
TRAV_PAGE = "vf-trav-page"          # dcc.Store: page of the traversal cards (0-based)
TRAV_ALL = "vf-trav-all"            # dcc.Checklist: show every member at once
TRAV_PREV = "vf-trav-prev"          # buttons: previous / next page of members
TRAV_NEXT = "vf-trav-next"
TRAV_PAGER = "vf-trav-pager"        # "members 1-12 of 20"
TRAV_ERROR = "vf-trav-error"        # why the traversal controls' values cannot be used


def base_thumb(index: int) -> dict:
    """Pattern-matching id of one fingerprint thumbnail in the base strip."""
    return {"type": "vf-base-thumb", "index": int(index)}


BASE_THUMB_TYPE = "vf-base-thumb"

# --- export ---------------------------------------------------------------------------------------
EXPORT_FORMAT = "vf-export-format"  # dcc.RadioItems pdf / svg / png
EXPORT_FIGURE = "vf-export-figure"  # button: paper figure
EXPORT_CSV = "vf-export-csv"        # button: hotspot table CSV
EXPORT_NPZ = "vf-export-npz"        # button: matrices NPZ
DOWNLOAD = "vf-download"            # dcc.Download

# --- beyond channels: full latent spaces and fusion (callbacks/beyond.py) -------------------------
BEYOND_TABS = "vf-beyond-tabs"      # dcc.Tabs: full latent spaces | fuse selection | compare ensembles
SPACES_GRAPH = "vf-spaces"          # dcc.Graph: model x model full-space NMI / VI + I(X;U) per model
SPACES_MEASURE = "vf-spaces-measure"  # dcc.RadioItems nmi / vi
SPACES_COMPUTE = "vf-spaces-compute"  # button: compute the full-space comparison (background job)
SPACES_CANCEL = "vf-spaces-cancel"
SPACES_PROGRESS = "vf-spaces-progress"
SPACES_PROGRESS_TEXT = "vf-spaces-progress-text"
SPACES_JOB_PANEL = "vf-spaces-job-panel"
SPACES_STATUS = "vf-spaces-status"
SPACES_DONE = "vf-spaces-done"      # dcc.Store: {"ensemble", "key"} of the last computed comparison
FUSE = "vf-fuse"                    # button: fuse the channels of the shared selection (background job)
FUSE_CANCEL = "vf-fuse-cancel"
FUSE_OBJECTIVE = "vf-fuse-objective"  # dcc.RadioItems nmi / vi / info
FUSE_COLOR = "vf-fuse-color"        # dcc.Dropdown: colour the fused space by "index" or "factor:<j>"
FUSE_PROGRESS = "vf-fuse-progress"
FUSE_PROGRESS_TEXT = "vf-fuse-progress-text"
FUSE_JOB_PANEL = "vf-fuse-job-panel"
FUSE_STATUS = "vf-fuse-status"
FUSED = "vf-fused"                  # dcc.Graph: fused means with uncertainty ellipses
FUSE_AGREEMENT = "vf-fuse-agreement"  # dcc.Graph: NMI of the fused space with each input
FUSION = "vf-fusion"                # dcc.Store: {"ensemble", "key", "channels", "n_points"} of the figure shown
COMPARE_WITH = "vf-compare-with"    # dcc.Dropdown: the other ensemble (same fingerprint points)
COMPARE = "vf-compare"              # button: compare the open ensemble with it (background job)
COMPARE_CANCEL = "vf-compare-cancel"
COMPARE_PROGRESS = "vf-compare-progress"
COMPARE_PROGRESS_TEXT = "vf-compare-progress-text"
COMPARE_JOB_PANEL = "vf-compare-job-panel"
COMPARE_STATUS = "vf-compare-status"
COMPARE_GRAPH = "vf-compare-graph"  # dcc.Graph: mean NMI between the hotspots of the two ensembles
