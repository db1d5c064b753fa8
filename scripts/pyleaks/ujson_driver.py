"""ujson: ujson.loads() of an integer beyond 64 bits copies its digits into a buffer
(PyObject_Malloc(length + 1), for PyLong_FromString) and never frees it: every big integer
decoded leaks its digit count + 1 bytes, a small object (in CPython's arenas unless
PYTHONMALLOC=malloc, which the profiler sets).

Leaks in 5.4.0 to 5.11.0, fixed in 5.12.0:
  https://github.com/ultrajson/ultrajson/commit/4baeb950df780092bd3c89fc702a868e99a3a1d2
  ("Fix memory leak parsing large integers", Object_newIntegerFromString, tagged 5.12.0)
  https://github.com/datahub-project/datahub/pull/16679 ("require ujson>=5.12.0 ... avoids
  memory growth on huge integers in 5.4-5.11")
Measured here on 5.11.0: the document below leaks 16 blocks, 640 bytes, per loads().

Not the 5.12.0 / 5.12.1 pair (CVE-2026-44660, dump() to a write() that raises): every
ujson.dump() looks up file.write by a C string (PyObject_GetAttrString), a new "write" str per
call that CPython's type attribute cache (4096 slots) keeps alive in the slot it lands in, so
the fixed 5.12.1 keeps ~0.5 more heap block per call over thousands of calls (bounded by the
cache's slots, but measured here as a steady +0.5 to +1 heap block per iteration at 40-160
iterations, one call per iteration, even after 100,000 warm-up calls: called a leak in 2 to 4
of 5 runs; sys._clear_type_cache() frees them all).
The same holds for the default= path of #631 (the "toDict" and "__json__" probes). loads()
looks nothing up by name.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import ujson  # noqa: E402

# 16 amounts beyond 64 bits (128-bit ids, balances in a smallest unit): 39 digits each.
DOC = "[" + ",".join(str(2**127 + 7919 * i) for i in range(16)) + "]"


def step():
    ujson.loads(DOC)


_common.run(step, _common.calls_for(640), f"ujson {ujson.__version__} loads() of 128-bit integers")
