"""w6 threadsafe: another OS thread posts N callbacks to the loop with
loop.call_soon_threadsafe; the loop counts every one and checks the sum.

    python3 bench/py/w6_threadsafe.py [N] [--uvloop]

The poster thread is started before the clock starts and waits for a
go signal, as the Lua workload's executor worker is started first.
"""
import asyncio
import threading
import time

from common import run


async def main(n, name):
    loop = asyncio.get_running_loop()
    done = loop.create_future()
    count = 0
    total = 0

    def on(i):
        nonlocal count, total
        count += 1
        total += i
        if count == n:
            done.set_result(None)

    go = threading.Event()

    def poster():
        go.wait()
        for i in range(1, n + 1):
            loop.call_soon_threadsafe(on, i)

    thread = threading.Thread(target=poster)
    thread.start()
    t0 = time.perf_counter()
    go.set()
    await done
    seconds = time.perf_counter() - t0
    thread.join()
    if count != n or total != n * (n + 1) // 2:
        raise SystemExit(f"w6_threadsafe: {count} calls, sum {total}")
    print(f"{name}/w6_threadsafe {n} {seconds:.4f} {n / seconds:.0f}")


if __name__ == "__main__":
    run(main, 200000)
