"""msgspec: msgpack-decoding a Struct whose variable-length tuple field has more than 16
items leaks the tuple (a reference-count leak in the C extension).

Leaks in 0.14.1 (introduced there), fixed in 0.14.2:
  https://github.com/msgspec/msgspec/issues/379 (report, with this reproducer)
  https://github.com/msgspec/msgspec/pull/380   (fix, "introduced in version 0.14.1")
Measured here on 0.14.1, CPython 3.11: about 258 bytes of RSS per decode.
"""
import os
import sys

sys.dont_write_bytecode = True  # no __pycache__ beside the drivers
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common  # noqa: E402

import msgspec  # noqa: E402


class A(msgspec.Struct):
    tuple_field: tuple[int, ...]


decoder = msgspec.msgpack.Decoder(type=A)
data = msgspec.msgpack.Encoder().encode(A(tuple_field=tuple(range(17))))


def step():
    decoder.decode(data)


_common.run(step, _common.calls_for(258), f"msgspec {msgspec.__version__} Decoder(A).decode")
