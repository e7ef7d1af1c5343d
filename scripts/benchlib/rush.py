"""Scenario 4's clients: every registration sent at once, each on its own connection, from a
process of its own (wrk sends for a duration; this needs each request exactly once)."""

from __future__ import annotations

import asyncio
import multiprocessing
import time
from typing import Any

import aiohttp


async def _all_at_once(url: str, bodies: list[str], headers: dict[str, str]) -> dict[str, Any]:
    errors = 0
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=600)) as http:
        gate = asyncio.Event()

        async def one(body: str) -> None:
            nonlocal errors
            await gate.wait()
            t0 = time.perf_counter()
            try:
                async with http.post(url, data=body.encode(), headers=headers) as answer:
                    text = await answer.text()
                    if answer.status != 200 or '"errors":[]' not in text:
                        errors += 1
            except aiohttp.ClientError:
                errors += 1
            latencies.append(time.perf_counter() - t0)

        tasks = [asyncio.create_task(one(b)) for b in bodies]
        await asyncio.sleep(0.1)
        started = time.perf_counter()
        gate.set()
        await asyncio.gather(*tasks)
        drain = time.perf_counter() - started
    latencies.sort()
    return {"errors": errors, "drain_seconds": drain,
            "p50_ms": latencies[len(latencies) // 2] * 1000, "max_ms": latencies[-1] * 1000}


def _child(conn: Any, url: str, bodies: list[str], headers: dict[str, str]) -> None:
    conn.send(asyncio.run(_all_at_once(url, bodies, headers)))
    conn.close()


def run_in_process(url: str, bodies: list[str], headers: dict[str, str]) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    parent, child = context.Pipe()
    process = context.Process(target=_child, args=(child, url, bodies, headers), name="bench-rush")
    process.start()
    if not parent.poll(900):
        process.kill()
        raise RuntimeError("the rush clients did not finish")
    result = parent.recv()
    process.join(10)
    return result
