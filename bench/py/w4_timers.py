"""w4 timers: N tasks sleeping (i * 7919 % 100000) / 100000 seconds on the
real clock. Reports the overhead (wall time minus 1 s) and the growth of
the process's resident set (VmRSS) per sleeping task, measured after a
full collection while every task sleeps. With --tracemalloc, also the
net bytes tracemalloc sees per task (tracing slows the run: its times are
not comparable).

    python3 bench/py/w4_timers.py [N] [--uvloop] [--tracemalloc]
"""
import asyncio
import gc
import sys
import time
import tracemalloc

from common import rss, run

TRACE = "--tracemalloc" in sys.argv


async def sleeper(i):
    await asyncio.sleep((i * 7919 % 100000) / 100000)
    return i


def memory():
    gc.collect()
    return rss(), tracemalloc.get_traced_memory()[0] if TRACE else 0


async def main(n, name):
    if TRACE:
        tracemalloc.start()
    rss0, traced0 = memory()
    t0, c0 = time.perf_counter(), time.process_time()
    tasks = [asyncio.create_task(sleeper(i)) for i in range(1, n + 1)]
    # one iteration: every task has taken its first step and sleeps
    await asyncio.sleep(0)
    rss1, traced1 = memory()
    total = 0
    for t in tasks:
        total += await t
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if total != n * (n + 1) // 2:
        raise SystemExit(f"w4_timers: sum {total}, expected {n * (n + 1) // 2}")
    extra = (f"overhead={seconds - 1:.3f} rss_per_task={(rss1 - rss0) / n:.0f}"
             f" cpu={cpu:.3f}")
    if TRACE:
        extra += f" traced_per_task={(traced1 - traced0) / n:.0f}"
    print(f"{name}/w4_timers {n} {seconds:.4f} {n / seconds:.0f} {extra}")


if __name__ == "__main__":
    run(main, 100000)
