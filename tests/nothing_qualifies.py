"""``python -m tests.nothing_qualifies run.py ARGS...``: run.py with a selection rule that no
variant meets, so the end-to-end test of the failed-budget path does not depend on which way
a tiny model's mAPs happen to fall (budgets below 0 are refused by the config check)."""

from __future__ import annotations

import os
import runpy
import sys

if __name__ == "__main__":
    from yeo import env

    env.configure()  # as run.py does, before anything else is imported
    from yeo.optimize import variants

    variants.qualifies = lambda *_args, **_kwargs: False
    script, *rest = sys.argv[1:]
    sys.argv = [script, *rest]
    sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
    runpy.run_path(script, run_name="__main__")
