"""w8 gather/wait: N rounds; each round creates 100 tasks, of which one
finishes at the next iteration (sleep(0)) and 99 sleep for an hour, waits
for them with wait(FIRST_COMPLETED), cancels the 99 pending ones and lets
their cancellation run (one sleep(0)).

    python3 bench/py/w8_gather_wait.py [N] [--uvloop]
"""
import asyncio
import time

from common import run

WIDTH = 100


async def quick():
    await asyncio.sleep(0)
    return 1


async def slow():
    await asyncio.sleep(3600)
    return 0


async def main(n, name):
    t0 = time.perf_counter()
    finished = cancelled = 0
    for _ in range(n):
        tasks = [asyncio.create_task(quick())]
        tasks += [asyncio.create_task(slow()) for _ in range(WIDTH - 1)]
        done, pending = await asyncio.wait(
            tasks, return_when=asyncio.FIRST_COMPLETED)
        finished += sum(t.result() for t in done)
        for t in pending:
            t.cancel()
        await asyncio.sleep(0)
        cancelled += sum(1 for t in pending if t.cancelled())
    seconds = time.perf_counter() - t0
    if finished != n or cancelled != n * (WIDTH - 1):
        raise SystemExit(f"w8_gather_wait: {finished} finished, {cancelled} "
                         f"cancelled; expected {n} and {n * (WIDTH - 1)}")
    print(f"{name}/w8_gather_wait {n} {seconds:.4f} {n / seconds:.0f}")


if __name__ == "__main__":
    run(main, 1000)
