"""Run one fuzz target under Atheris: `python -m tests.fuzz.run TARGET [libFuzzer flags]`.

Atheris needs a process of its own (libFuzzer owns `main`, exits on the first crash), so
the short runs in `make test` and the long runs of `make fuzz` both start this module.
It seeds a fresh corpus directory from real sessions and messages (the message corpus
of `tests/message/corpus` is read where it lies), instruments `pillarbox` for coverage,
and adds the parts of the oracle that live outside the target: an input that takes
more than 1 s of CPU time is a hang (CPU, not wall clock, so a busy machine does not
cause false reports), and so is a peak RSS above MEMORY_MB after any input. The peak is
a high-water mark, so the check catches an input that allocates a lot and frees it
before returning; libFuzzer's own `-malloc_limit_mb` cannot (it needs sanitizer
allocator hooks, which Atheris without ASan does not have), and its `-rss_limit_mb`
only samples once a second. Inputs are at most 16 KiB (see MAX_LEN), so hundreds
of MiB can only mean allocation out of proportion to the input. A crash leaves its
input in `var/fuzz/` and exits non-zero.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

import atheris

HANG_SECONDS = 1.0
MEMORY_MB = 400
ROOT = Path(__file__).resolve().parents[2]
DEFAULTS = {
    # libFuzzer's RSS limit reads getrusage's ru_maxrss, which Linux carries across exec
    # from the parent: started by a pytest worker that once held 600 MiB, every run
    # would "exceed" it at its first input. The peak of this process is checked per
    # input instead (`_peak_mb`, VmHWM, which is per address space).
    "-rss_limit_mb": "0",
    "-malloc_limit_mb": "256",
    "-timeout": "10",  # libFuzzer's own alarm: a loop that never returns to the check
    "-print_final_stats": "1",
}
# Bytes per input: a message may be long; a header field line is at most 998 characters
# (RFC 5322 §2.1.1) and a mailbox name far shorter, so those targets stay at 1 KiB.
MAX_LEN = {"message": "16384", "headers": "1024", "list_pattern": "1024", "rules": "1024"}


def _peak_mb() -> int:
    """This process's peak resident memory (VmHWM): unlike ru_maxrss it starts afresh at
    exec, so a parent's peak does not count."""
    with open("/proc/self/status", "rb") as status:
        for line in status:
            if line.startswith(b"VmHWM:"):
                return int(line.split()[1]) // 1024  # kB
    return 0


class Hang(Exception):
    """One input took more CPU time than HANG_SECONDS."""


class MemoryHog(Exception):
    """The process's peak RSS passed MEMORY_MB while running an input."""


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1].startswith("-"):
        sys.exit("usage: python -m tests.fuzz.run TARGET [libFuzzer flags]")
    name = sys.argv[1]
    # Nothing from pillarbox may be imported before this block: a module imported
    # uninstrumented gives the fuzzer no coverage to steer by. The drivers and oracles
    # in tests.fuzz are left uninstrumented: their branches say nothing about the
    # parsers and would cost speed.
    with atheris.instrument_imports(include=["pillarbox"]):
        from . import seeds
        from .targets import TARGETS
    if name not in TARGETS:
        sys.exit(f"unknown target {name!r}; one of {', '.join(TARGETS)}")
    target = TARGETS[name]

    def one_input(data: bytes) -> None:
        start = time.process_time()
        target(data)
        spent = time.process_time() - start
        if spent > HANG_SECONDS:
            raise Hang(f"{spent:.2f} s of CPU for one input of {len(data)} bytes")
        peak_mb = _peak_mb()
        if peak_mb > MEMORY_MB:
            raise MemoryHog(f"peak RSS {peak_mb} MiB after an input of {len(data)} bytes")

    flags = [a for a in sys.argv[2:] if a.startswith("-")]
    given = {f.split("=", 1)[0] for f in flags}
    artifacts = ROOT / "var" / "fuzz"
    artifacts.mkdir(parents=True, exist_ok=True)
    defaults = {**DEFAULTS, "-max_len": MAX_LEN.get(name, "4096")}
    defaults["-artifact_prefix"] = f"{artifacts}/{name}-"
    flags += [f"{k}={v}" for k, v in defaults.items() if k not in given]
    # libFuzzer ends the process with exit(), so a run's corpus directory is removed by
    # a later run (one per process: short and long runs may overlap).
    for old in artifacts.glob(f"corpus-{name}-*"):
        if not Path(f"/proc/{old.name.rsplit('-', 1)[1]}").exists():
            shutil.rmtree(old, ignore_errors=True)
    work = artifacts / f"corpus-{name}-{os.getpid()}"
    work.mkdir()
    for i, seed in enumerate(seeds.SEEDS.get(name, [])):
        (work / f"seed-{i}").write_bytes(seed)
    dirs = [str(work)] + [str(ROOT / d) for d in seeds.SEED_DIRS.get(name, [])]
    atheris.Setup([sys.argv[0], *flags, *dirs], one_input)
    atheris.Fuzz()


if __name__ == "__main__":
    main()
