"""w1 spawn: N tasks that each await sleep(0) once and return their index;
the main task gathers them (asyncio.gather) and checks the sum.

    python3 bench/py/w1_spawn.py [N] [--uvloop]
"""
import asyncio
import time

from common import run


async def one(i):
    await asyncio.sleep(0)
    return i


async def main(n, name):
    t0, c0 = time.perf_counter(), time.process_time()
    tasks = [asyncio.create_task(one(i)) for i in range(1, n + 1)]
    results = await asyncio.gather(*tasks)
    total = sum(results)
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if total != n * (n + 1) // 2:
        raise SystemExit(f"w1_spawn: sum {total}, expected {n * (n + 1) // 2}")
    print(f"{name}/w1_spawn {n} {seconds:.4f} {n / seconds:.0f} cpu={cpu:.4f}")


if __name__ == "__main__":
    run(main, 200000)
