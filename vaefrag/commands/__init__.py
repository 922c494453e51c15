"""Sub-commands of the `vaefrag` CLI (one module each; see `vaefrag.cli`)."""


def bar_progress(bar):
    """A ``progress(done, total, message)`` callable (the library's convention) that drives a tqdm bar."""
    def progress(done, total, message=""):
        bar.total, bar.n = total, done
        bar.set_postfix_str(message)
        bar.refresh()

    return progress
