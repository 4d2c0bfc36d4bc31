"""xoscar_rs beside xoscar, the same shapes in the same run: ``cargo xtask bench --python``.

The driver runs, round after round, one client process per implementation (xoscar first,
then ours); each client starts a server process of its own implementation and measures
every shape against it. Medians over the rounds go to the table, with ours / xoscar as a
rate ratio (above 1: ours is faster).
"""

import argparse
import asyncio
import importlib
import json
import os
import statistics
import subprocess
import sys
import time

IMPLS = ("xoscar", "xoscar_rs")
MIB = 1 << 20


def actor_class(xo):
    class Echo(xo.Actor):
        def __init__(self):
            self.told = 0

        def echo(self, value):
            return value

        def tell(self, value):
            self.told += 1

        def count(self):
            return self.told

    return Echo


async def serve(impl):
    xo = importlib.import_module(impl)
    pool = await xo.create_actor_pool("127.0.0.1", n_process=0)
    await xo.create_actor(actor_class(xo), address=pool.external_address, uid="echo")
    print(pool.external_address, flush=True)
    await asyncio.Event().wait()


async def sequential(call, n):
    for _ in range(100):
        await call()
    started = time.perf_counter()
    for _ in range(n):
        await call()
    return (time.perf_counter() - started) / n * 1e6  # us per call


async def in_flight(call, n, width=64):
    for _ in range(2):
        await asyncio.gather(*(call() for _ in range(width)))
    started = time.perf_counter()
    for _ in range(n // width):
        await asyncio.gather(*(call() for _ in range(width)))
    return (n // width) * width / (time.perf_counter() - started)  # calls per second


async def client(impl, quick):
    xo = importlib.import_module(impl)
    scale = 0.2 if quick else 1.0
    results = {}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve", "--impl", impl],
        stdout=subprocess.PIPE,
        text=True,
        env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
    )
    try:
        remote_address = server.stdout.readline().strip()
        pool = await xo.create_actor_pool("127.0.0.1", n_process=0)
        async with pool:
            address = pool.external_address
            created = await xo.create_actor(actor_class(xo), address=address, uid="local")
            local = await xo.actor_ref(address, "local")
            results["local call, local ref (us)"] = await sequential(
                lambda: local.echo(1), int(20000 * scale)
            )
            results["local call, created ref (us)"] = await sequential(
                lambda: created.echo(1), int(3000 * scale)
            )
            remote = await xo.actor_ref(remote_address, "echo")
            results["TCP call, one at a time (us)"] = await sequential(
                lambda: remote.echo(1), int(3000 * scale)
            )
            results["TCP calls, 64 in flight (calls/s)"] = await in_flight(
                lambda: remote.echo(1), int(20000 * scale)
            )
            payload = b"x" * MIB
            started = time.perf_counter()
            n = max(5, int(100 * scale))
            for _ in range(n):
                await remote.echo(payload)
            results["TCP 1 MiB echo (MiB/s)"] = n * 2 / (time.perf_counter() - started)
            n = int(10000 * scale)
            before = await remote.count()
            started = time.perf_counter()
            for _ in range(n):
                await remote.tell.tell(1)
            while await remote.count() < before + n:
                await asyncio.sleep(0)
            results["TCP tells (tells/s)"] = n / (time.perf_counter() - started)
    finally:
        server.kill()
        server.wait()
    print(json.dumps(results), flush=True)


async def raw_echo_server():
    """The limit with no framework: asyncio streams, 4-byte length-prefixed echo."""

    async def echo(reader, writer):
        try:
            while True:
                head = await reader.readexactly(4)
                body = await reader.readexactly(int.from_bytes(head, "little"))
                writer.write(head + body)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(echo, "127.0.0.1", 0)
    print(f"127.0.0.1:{server.sockets[0].getsockname()[1]}", flush=True)
    await asyncio.Event().wait()


async def raw_limit(quick):
    """One-at-a-time round trips of 16 bytes over a bare asyncio TCP stream, against a
    server process of the same kind: what any Python framework's call costs at least."""
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-raw"], stdout=subprocess.PIPE, text=True
    )
    try:
        host, port = server.stdout.readline().strip().rsplit(":", 1)
        reader, writer = await asyncio.open_connection(host, int(port))
        frame = (16).to_bytes(4, "little") + b"x" * 16

        async def round_trip():
            writer.write(frame)
            await writer.drain()
            head = await reader.readexactly(4)
            await reader.readexactly(int.from_bytes(head, "little"))

        result = await sequential(round_trip, int(3000 * (0.2 if quick else 1.0)))
        writer.close()
        return result
    finally:
        server.kill()
        server.wait()


def is_time(row):
    return row.endswith("(us)")


def drive(rounds, quick, out):
    runs = {impl: [] for impl in IMPLS}
    raw = []
    for round_index in range(rounds):
        raw.append(asyncio.run(raw_limit(quick)))
        for impl in IMPLS:
            done = subprocess.run(
                [sys.executable, __file__, "--client", "--impl", impl]
                + (["--quick"] if quick else []),
                capture_output=True,
                text=True,
                timeout=600,
            )
            if done.returncode != 0:
                sys.exit(f"{impl} client failed:\n{done.stderr}")
            runs[impl].append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(f"round {round_index + 1}/{rounds}: {impl} done", file=sys.stderr)
    lines = [
        "# xoscar_rs beside xoscar 0.12.2",
        "",
        f"{rounds} rounds, alternating (xoscar, then ours), medians; ratio: our rate / xoscar's "
        "(above 1: ours is faster). Python "
        f"{sys.version.split()[0]}, this machine.",
        "",
        "| shape | xoscar | xoscar_rs | ours / xoscar (rate) |",
        "|---|---|---|---|",
    ]
    for row in runs["xoscar"][0]:
        theirs = statistics.median(run[row] for run in runs["xoscar"])
        ours = statistics.median(run[row] for run in runs["xoscar_rs"])
        ratio = theirs / ours if is_time(row) else ours / theirs
        lines.append(f"| {row} | {theirs:,.1f} | {ours:,.1f} | {ratio:.2f}x |")
    lines += [
        "",
        f"Limit, same run: a bare asyncio TCP round trip of 16 bytes between two Python "
        f"processes, one at a time: {statistics.median(raw):.1f} us (median of {rounds}).",
    ]
    text = "\n".join(lines) + "\n"
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        f.write(text)
    print(text)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--impl", choices=IMPLS)
    parser.add_argument("--serve", action="store_true")
    parser.add_argument("--serve-raw", action="store_true")
    parser.add_argument("--client", action="store_true")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--out", default="target/bench/python.md")
    args = parser.parse_args()
    if args.serve_raw:
        asyncio.run(raw_echo_server())
    elif args.serve:
        asyncio.run(serve(args.impl))
    elif args.client:
        asyncio.run(client(args.impl, args.quick))
    else:
        drive(args.rounds, args.quick, args.out)


if __name__ == "__main__":
    main()
