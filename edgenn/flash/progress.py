"""Transfer progress bars: tqdm on stderr, only when stderr is a terminal and not --quiet."""

import sys


def transfer_bar(description, quiet=False, position=0):
    """A callback(sent, total) drawing a bar, and a close(); (None, no-op) when bars are off."""
    if quiet or not sys.stderr.isatty():
        return None, lambda: None
    from tqdm import tqdm

    bar = tqdm(desc=description, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
               position=position, leave=False)

    def update(sent, total):
        bar.total = total
        bar.update(sent - bar.n)

    return update, bar.close
