"""w7 tcp: an echo server on 127.0.0.1:PORT that exits once CONNS
connections have closed; the load comes from bench/tcp_client.c.

    python3 bench/py/w7_tcp_server.py N PORT CONNS [--uvloop]
"""
import asyncio
import sys

from common import run


async def main(n, name):
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    port = int(args[1]) if len(args) > 1 else 8888
    conns = int(args[2]) if len(args) > 2 else 50
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

    srv = await asyncio.start_server(serve, "127.0.0.1", port)
    await all_closed
    srv.close()
    await srv.wait_closed()


if __name__ == "__main__":
    run(main, 200000)
