"""Benchmark scripts (`vaefrag bench NAME`): ratios measured side by side in one run."""


def print_rows(rows: list[tuple[str, str]]) -> None:
    """Print (label, value) rows with the labels padded to one width."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        print(f"{label:<{width}}  {value}")
