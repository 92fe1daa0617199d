#!/usr/bin/env python3
"""Opens COUNT keep-alive HTTP/1.1 connections to 127.0.0.1:PORT, spread over
source addresses 127.0.1.x (PER_ADDRESS each), sends one GET on each, reads
its whole answer, then holds every connection idle. Prints "ready N" once all
are open and answered, then waits for stdin to close (or HOLD seconds).

Usage: idle-clients.py PORT COUNT [PER_ADDRESS] [HOLD]"""
import asyncio
import sys

PORT = int(sys.argv[1])
COUNT = int(sys.argv[2])
PER_ADDRESS = int(sys.argv[3]) if len(sys.argv) > 3 else 25
HOLD = float(sys.argv[4]) if len(sys.argv) > 4 else 120.0
REQUEST = b"GET / HTTP/1.1\r\nHost: bench\r\n\r\n"


def source(index):
    n = index // PER_ADDRESS
    return f"127.0.{1 + n // 250}.{1 + n % 250}"


async def one(index, held):
    reader, writer = await asyncio.open_connection("127.0.0.1", PORT, local_addr=(source(index), 0))
    writer.write(REQUEST)
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":")[1])
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(head.split(b"\r\n")[0].decode())
    await reader.readexactly(length)
    held.append(writer)


async def main():
    held = []
    batch = 200
    for start in range(0, COUNT, batch):
        await asyncio.gather(*(one(i, held) for i in range(start, min(COUNT, start + batch))))
    print(f"ready {len(held)}", flush=True)
    loop = asyncio.get_running_loop()
    done = loop.run_in_executor(None, sys.stdin.read)
    await asyncio.wait_for(done, HOLD)


asyncio.run(main())
