"""Shared by the Python twins of the workloads: argument handling and the
choice of event loop (CPython's asyncio, or uvloop with --uvloop)."""
import asyncio
import sys


def run(main, default_n):
    """Runs main(n, name) on a fresh loop; name is the result-line prefix."""
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(args[0]) if args else default_n
    if "--uvloop" in sys.argv:
        import uvloop
        uvloop.install()
        name = "uvloop"
    else:
        name = "asyncio"
    asyncio.run(main(n, name))


def rss():
    """The process's resident set size in bytes (VmRSS)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
