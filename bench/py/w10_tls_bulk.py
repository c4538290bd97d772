"""w10 tls bulk: N MiB through one TLS 1.3 connection on 127.0.0.1, both
ends in this process; prints MiB/s as ops/s.

    python3 bench/py/w10_tls_bulk.py N CERT KEY [--uvloop]
"""
import asyncio
import ssl
import sys
import time

from common import run


async def main(n, name):
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    loop = asyncio.get_running_loop()
    sctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    sctx.load_cert_chain(args[1], args[2])
    cctx = ssl.create_default_context()
    cctx.check_hostname = False
    cctx.verify_mode = ssl.CERT_NONE
    total = n * 1024 * 1024
    done = loop.create_future()

    async def serve(reader, writer):
        got = 0
        while got < total:
            data = await reader.read(65536)
            if not data:
                break
            got += len(data)
        done.set_result(got)
        writer.close()

    srv = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=sctx)
    port = srv.sockets[0].getsockname()[1]
    reader, writer = await asyncio.open_connection("127.0.0.1", port,
                                                   ssl=cctx)
    chunk = b"b" * 65536
    t0 = time.monotonic()
    for _ in range(total // len(chunk)):
        writer.write(chunk)
        await writer.drain()
    got = await done
    t1 = time.monotonic()
    assert got == total, "short transfer"
    print("%s/w10_tls_bulk %d %.4f %.0f" % (name, n, t1 - t0, n / (t1 - t0)))
    writer.close()
    await reader.read()
    srv.close()
    await srv.wait_closed()


if __name__ == "__main__":
    run(main, 256)
