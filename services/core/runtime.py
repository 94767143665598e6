"""Process-level tuning shared by the API and the worker."""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    """Keep what startup built (modules, the catalog, settings, pools) out of the cyclic
    garbage collector's walks: it lives as long as the process anyway.

    Without this every full collection walks the whole startup heap again: during a large
    deadline sweep that was several collections of ~75 ms each on a 2-core machine.
    Call once, when startup is done; objects made later are collected as usual.
    """
    gc.collect()
    gc.freeze()
