"""Shared loop for the pyleaks drivers (imported by <pkg>_driver.py, which take no arguments).

Each iteration calls the package's leaking API a fixed number of times, prints `tick` and
flushes, then idles a little, like a worker between jobs: the profiler samples at the marker
line, so the sample shows the state at the end of an iteration, not the middle of the next.

Environment (all optional):
  PYLEAKS_KIB         memory leaked per iteration by the leaking release, in KiB (default 32);
                      the drivers turn it into a call count from the measured bytes per call
  PYLEAKS_SLEEP_MS    idle time after each marker line (default 10). With 0 an iteration
                      lasts tens of microseconds: marker lines pile up in the pipe whenever
                      the profiler is off the CPU, and are then sampled together at one instant
  PYLEAKS_ITERATIONS  iterations before the driver exits on its own (default 1000; the
                      profiler normally stops it first)
  PYLEAKS_WARMUP      calls made at start-up, before the first marker line (default 300), as
                      CPython's own leak hunter (regrtest -R) runs warm-up rounds first: the
                      interpreter and a C extension fill caches and free lists on a new code
                      path for a while, which is not a leak
"""
import os
import sys
import time


def env_int(name, default):
    try:
        return int(os.environ.get(name, default))
    except ValueError:
        return default


def calls_for(bytes_per_call):
    """Calls per iteration so that the leaking release leaks about PYLEAKS_KIB per iteration."""
    kib = env_int("PYLEAKS_KIB", 32)
    return max(1, round(kib * 1024 / bytes_per_call))


def run(step, calls, label):
    iterations = env_int("PYLEAKS_ITERATIONS", 1000)
    sleep = env_int("PYLEAKS_SLEEP_MS", 10) / 1000.0
    print(f"# {label}: {calls} call(s) per iteration", file=sys.stderr, flush=True)
    # Warm caches, imports, lazy type setup and the interpreter's free lists before the
    # start-up marker.
    for _ in range(max(1, env_int("PYLEAKS_WARMUP", 300))):
        step()
    print("tick", flush=True)  # start-up ends here: sample 0
    for _ in range(iterations):
        for _ in range(calls):
            step()
        print("tick", flush=True)
        if sleep:
            time.sleep(sleep)
