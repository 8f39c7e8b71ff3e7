#!/usr/bin/env python3
"""A TCP proxy that delays every chunk by a fixed time in each direction, keeping order.

Used by the partition test: `tc netem` is not available on these kernels (FACTS.md).
Usage: delay_proxy.py LISTEN_HOST:PORT TARGET_HOST:PORT DELAY_SECONDS
"""
import asyncio
import sys


async def pipe(reader, writer, delay):
    queue = asyncio.Queue()

    async def sender():
        loop = asyncio.get_running_loop()
        while True:
            due, data = await queue.get()
            if data is None:
                break
            wait = due - loop.time()
            if wait > 0:
                await asyncio.sleep(wait)
            try:
                writer.write(data)
                await writer.drain()
            except (ConnectionError, OSError):
                break
        try:
            writer.close()
        except Exception:
            pass

    task = asyncio.create_task(sender())
    loop = asyncio.get_running_loop()
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            await queue.put((loop.time() + delay, data))
    except (ConnectionError, OSError):
        pass
    await queue.put((0, None))
    await task


async def main():
    listen, target, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    lhost, lport = listen.rsplit(":", 1)
    thost, tport = target.rsplit(":", 1)

    async def handle(cr, cw):
        try:
            ur, uw = await asyncio.wait_for(asyncio.open_connection(thost, int(tport)), 10)
        except (OSError, asyncio.TimeoutError):
            cw.close()
            return
        await asyncio.gather(pipe(cr, uw, delay), pipe(ur, cw, delay))

    server = await asyncio.start_server(handle, lhost, int(lport))
    print(f"delay_proxy: {listen} -> {target}, {delay * 1000:.0f} ms each way", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
