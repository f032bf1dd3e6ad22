"""Runs a Python program in this process and, as it exits, writes the process's peak resident memory.

    python benchmarks/peak.py OUT_FILE SCRIPT [ARG…]      # or: peak.py OUT_FILE -c CODE [ARG…]

The kernel's `ru_maxrss` of a child starts from its parent's memory at the fork, so a benchmark that has
read a lake itself would see its own size in every child it times; `VmHWM` in /proc/self/status counts this
process's memory alone, from its exec on. OUT_FILE receives the figure in kB.
"""

import atexit
import runpy
import sys


def write_peak(path: str) -> None:
    with open("/proc/self/status") as status:
        kilobytes = next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))
    with open(path, "w") as out:
        out.write(str(kilobytes))


def main() -> None:
    out, program, *args = sys.argv[1:]
    atexit.register(write_peak, out)
    if program == "-c":
        code, *args = args
        sys.argv = ["-c", *args]
        exec(compile(code, "<string>", "exec"), {"__name__": "__main__"})
    else:
        sys.argv = [program, *args]
        runpy.run_path(program, run_name="__main__")


if __name__ == "__main__":
    main()
