"""Start the vaefrag dashboard: `python app.py [--host 127.0.0.1] [--port 8050] [--ensembles DIR]`.

The same as `vaefrag serve` (waitress); binds to localhost unless told otherwise.
"""
import argparse
import logging
import sys

from vaefrag.dashboard import serve

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    serve.add_arguments(parser)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    logging.getLogger("distributed").setLevel(logging.WARNING)
    try:
        sys.exit(serve.run(parser.parse_args()))
    except (ValueError, OSError) as exc:
        print(f"app.py: error: {exc}", file=sys.stderr)
        sys.exit(2)
