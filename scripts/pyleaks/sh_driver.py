"""sh: every command run leaked one file descriptor (a pipe end) in the parent.

Leaks in 1.12.0 - 1.12.2 (a regression from 1.11), fixed in 1.12.3:
  https://github.com/amoffat/sh/issues/336 (report, bisected; "1.12.3 is live with your fix")
  https://github.com/amoffat/sh/pull/337   (fix)
Measured here on 1.12.2: one fd per command. One command per iteration.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import sh  # noqa: E402

true = sh.Command("true")


def step():
    true()


_common.run(step, 1, f"sh {sh.__version__} Command('true')()")
