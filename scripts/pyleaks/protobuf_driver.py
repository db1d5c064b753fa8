"""protobuf (upb C backend): every `map[key]` / `map.get(key)` on a message's map field
copied the key into the message's arena, which only grows while the message lives: a
long-lived message that is looked up often grows without bound.

Leaks in 4.24.4 (upb backend, the PyPI default since 4.21), fixed in 4.25.0:
  https://github.com/protocolbuffers/protobuf/issues/14571 (report)
  https://github.com/protocolbuffers/protobuf/pull/14583   ("Fixed Python memory leak in map
  lookup", merged 2023-11-01; 4.25.0, released right after, no longer leaks here)
Measured here on 4.24.4: about 65 bytes of RSS per lookup with a 64-character key.
google.protobuf.Struct's `fields` is a map<string, Value>, so no generated code is needed.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import google.protobuf  # noqa: E402
from google.protobuf.internal import api_implementation  # noqa: E402
from google.protobuf.struct_pb2 import Struct  # noqa: E402

KEY = "k" * 64
message = Struct()
message.update({KEY: 1.0, "other": "value"})


def step():
    message.fields.get(KEY)


_common.run(
    step,
    _common.calls_for(65),
    f"protobuf {google.protobuf.__version__} ({api_implementation.Type()}) Struct.fields.get",
)
