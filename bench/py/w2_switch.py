"""w2 switch: N ping-pong round trips between two tasks through two
Futures, a fresh Future per message.

    python3 bench/py/w2_switch.py [N] [--uvloop]
"""
import asyncio
import time

from common import run


async def main(n, name):
    loop = asyncio.get_running_loop()
    inbox_ping, inbox_pong = None, loop.create_future()
    trips = 0

    # Each side makes its next inbox before it answers, so the other side
    # always finds the inbox it must resolve.
    async def ping():
        nonlocal inbox_ping, trips
        for i in range(1, n + 1):
            out = inbox_pong
            inbox_ping = loop.create_future()
            out.set_result(i)
            v = await inbox_ping
            if v != i:
                raise RuntimeError(f"w2_switch: got {v}")
            trips += 1

    async def pong():
        nonlocal inbox_pong
        for _ in range(n):
            v = await inbox_pong
            inbox_pong = loop.create_future()
            inbox_ping.set_result(v)

    t0, c0 = time.perf_counter(), time.process_time()
    b = asyncio.create_task(pong())
    a = asyncio.create_task(ping())
    await a
    await b
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    if trips != n:
        raise SystemExit(f"w2_switch: {trips} round trips, expected {n}")
    print(f"{name}/w2_switch {n} {seconds:.4f} {n / seconds:.0f} cpu={cpu:.4f}")


if __name__ == "__main__":
    run(main, 200000)
