"""w3 queue: one producer puts the numbers 1..N into an unbounded
asyncio.Queue, then one None per consumer as its stop signal; four
consumers, started first, get and sum the numbers until their None. The
sums are checked.

    python3 bench/py/w3_queue.py [N] [--uvloop]
"""
import asyncio
import time

from common import run

CONSUMERS = 4


async def consumer(q):
    total = got = 0
    while True:
        item = await q.get()
        if item is None:
            return total, got
        total += item
        got += 1


async def producer(q, n):
    for i in range(1, n + 1):
        await q.put(i)
    for _ in range(CONSUMERS):
        await q.put(None)


async def main(n, name):
    q = asyncio.Queue()
    t0, c0 = time.perf_counter(), time.process_time()
    consumers = [asyncio.create_task(consumer(q)) for _ in range(CONSUMERS)]
    await asyncio.create_task(producer(q, n))
    total = got = 0
    for c in consumers:
        s, k = await c
        total += s
        got += k
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if total != n * (n + 1) // 2 or got != n:
        raise SystemExit(f"w3_queue: {got} items summing to {total}, "
                         f"expected {n} summing to {n * (n + 1) // 2}")
    print(f"{name}/w3_queue {n} {seconds:.4f} {n / seconds:.0f} cpu={cpu:.4f}")


if __name__ == "__main__":
    run(main, 500000)
