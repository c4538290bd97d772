"""w11 files: copies an N MiB file (made at run time in /tmp with a
non-zero pattern, deleted after) with 1 MiB reads and writes, each one
run by asyncio.to_thread (aiofiles is not in Debian; this is what it does
underneath), while a second task ticks every millisecond and records the
longest gap between two ticks (idle_gap_ms: the same during half a second
before the copy, nothing else running). ops_per_sec is MiB/s. With --cp
the copy is the cp(1) program instead (the limit: no event loop), run with
asyncio.create_subprocess_exec.

    python3 bench/py/w11_files.py [N] [--uvloop] [--cp]
"""
import asyncio
import os
import sys
import tempfile
import time

from common import run

MIB = 1048576


def make_source(n):
    block = b"".join(b"%063d\n" % i for i in range(1, MIB // 64 + 1))
    fd, path = tempfile.mkstemp()
    with os.fdopen(fd, "wb") as f:
        for _ in range(n):
            f.write(block)
    return path


def copy_chunk(src, dst):
    data = src.read(MIB)
    if data:
        dst.write(data)
    return len(data)


async def main(n, name):
    use_cp = "--cp" in sys.argv
    src = make_source(n)
    dst = src + ".copy"
    loop = asyncio.get_running_loop()
    state = {"running": True, "ticks": 0, "worst": 0.0}

    async def ticker():
        last = loop.time()
        while state["running"]:
            await asyncio.sleep(0.001)
            now = loop.time()
            state["worst"] = max(state["worst"], now - last)
            last = now
            state["ticks"] += 1

    tick_task = asyncio.create_task(ticker())
    await asyncio.sleep(0.5)  # the machine's own jitter, for comparison
    idle = state["worst"]
    state["worst"] = 0.0
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        if use_cp:
            p = await asyncio.create_subprocess_exec("cp", src, dst)
            assert await p.wait() == 0
        else:
            fsrc = await asyncio.to_thread(open, src, "rb")
            fdst = await asyncio.to_thread(open, dst, "wb")
            while True:
                data = await asyncio.to_thread(fsrc.read, MIB)
                if not data:
                    break
                await asyncio.to_thread(fdst.write, data)
            await asyncio.to_thread(fsrc.close)
            await asyncio.to_thread(fdst.close)
        seconds = time.perf_counter() - t0
        cpu = time.process_time() - c0
        state["running"] = False
        await tick_task
        assert os.stat(dst).st_size == n * MIB
    finally:
        os.remove(src)
        if os.path.exists(dst):
            os.remove(dst)
    label = "cp" if use_cp else name
    print("%s/w11_files %d %.4f %.0f worst_gap_ms=%.2f idle_gap_ms=%.2f "
          "ticks=%d cpu=%.3f" % (label, n, seconds, n / seconds,
                                 state["worst"] * 1000, idle * 1000,
                                 state["ticks"], cpu))


run(main, 1024)
