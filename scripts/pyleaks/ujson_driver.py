"""ujson: when ujson.dump() writes to a file-like object whose write() raises, the
serialized JSON string is never released: each failed dump leaks the whole payload
(CVE-2026-44660, objToJSONFile() in the C extension).

Leaks in 5.12.0, fixed in 5.12.1:
  https://github.com/datahub-project/datahub/pull/17453 (the CVE: "Patched in ujson 5.12.1")
  https://github.com/fecgov/openFEC/issues/6596 (Snyk SNYK-PYTHON-UJSON-16643463: ujson@5.12.0,
  fixed in ujson@5.12.1)
Measured here on 5.12.0: the payload below leaks about 16 KiB per failed dump.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import ujson  # noqa: E402


class FullDisk:
    """A sink whose write fails, like a full disk or a closed socket."""

    def write(self, s):
        raise OSError(28, "No space left on device")


PAYLOAD = {"id": 1, "body": "x" * 16366}  # serializes to 16,384 bytes
SINK = FullDisk()


def step():
    try:
        ujson.dump(PAYLOAD, SINK)
    except OSError:
        pass


_common.run(step, _common.calls_for(16384), f"ujson {ujson.__version__} dump() to a failing write()")
