"""w5 lock: 100 tasks each take one asyncio.Lock 1000 times, with
`await asyncio.sleep(0)` inside the critical section, and count their
turns inside. N = 100 x 1000 acquisitions; the count is checked, and so is
that nobody else was inside while a task held the lock.

    python3 bench/py/w5_lock.py [N] [--uvloop]
"""
import asyncio
import time

from common import run

TASKS = 100


async def main(n, name):
    rounds = n // TASKS
    lock = asyncio.Lock()
    inside = turns = 0

    async def worker():
        nonlocal inside, turns
        for _ in range(rounds):
            async with lock:
                inside += 1
                if inside != 1:
                    raise RuntimeError("w5_lock: two tasks inside the lock")
                await asyncio.sleep(0)
                turns += 1
                inside -= 1

    t0, c0 = time.perf_counter(), time.process_time()
    tasks = [asyncio.create_task(worker()) for _ in range(TASKS)]
    for t in tasks:
        await t
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if turns != TASKS * rounds:
        raise SystemExit(f"w5_lock: {turns} turns, expected {TASKS * rounds}")
    print(f"{name}/w5_lock {TASKS * rounds} {seconds:.4f} "
          f"{TASKS * rounds / seconds:.0f} cpu={cpu:.4f}")


if __name__ == "__main__":
    run(main, 100000)
