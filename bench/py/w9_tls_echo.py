"""w9 tls: w7's echo server over TLS 1.3 on 127.0.0.1:PORT, exiting once
CONNS connections have closed; the load comes from bench/tls_client.c.

    python3 bench/py/w9_tls_echo.py N PORT CONNS CERT KEY [--uvloop]
"""
import asyncio
import ssl
import sys

from common import run


async def main(n, name):
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    port = int(args[1]) if len(args) > 1 else 8888
    conns = int(args[2]) if len(args) > 2 else 50
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(args[3], args[4])
    all_closed = asyncio.get_running_loop().create_future()
    closed = 0

    async def serve(reader, writer):
        nonlocal closed
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
        writer.close()
        closed += 1
        if closed == conns:
            all_closed.set_result(None)

    srv = await asyncio.start_server(serve, "127.0.0.1", port, ssl=ctx)
    await all_closed
    srv.close()
    await srv.wait_closed()


if __name__ == "__main__":
    run(main, 200000)
