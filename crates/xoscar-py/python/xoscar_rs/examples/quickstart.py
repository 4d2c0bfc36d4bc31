"""xoscar_rs in one page: ``python -m xoscar_rs.examples.quickstart``.

A main pool with one sub pool (a Python process), an actor in each, calls within the
process and across, a tell, a remote error with where it was raised, a destroy.
"""

import asyncio
import os

import xoscar_rs as xo


class Counter(xo.Actor):
    def __init__(self, start: int):
        self.total = start

    def add(self, n: int) -> int:
        self.total += n
        return self.total

    def pid(self) -> int:
        return os.getpid()

    async def add_through(self, other: xo.ActorRef, n: int) -> int:
        # A ref travels inside a message; the callee calls back across processes.
        return await other.add(n)

    def fail(self):
        raise ValueError("this actor refuses")


async def main():
    async with await xo.create_actor_pool("127.0.0.1", 1) as pool:
        address = pool.external_address
        print(f"main pool at {address}, pid {os.getpid()}; sub pools: {pool.sub_processes}")
        here = await xo.create_actor(Counter, 0, address=address, uid="here")
        there = await xo.create_actor(
            Counter, 100, address=address, allocate_strategy=xo.allocate_strategy.RandomSubPool()
        )
        print(f"'here' runs in pid {await here.pid()}, the other in pid {await there.pid()}")
        print("here.add(1) =", await here.add(1))
        print("there.add(1) =", await there.add(1))
        await here.add.tell(10)
        print("after a tell of 10, here.add(0) =", await here.add(0))
        print("there adds 5 to here:", await there.add_through(here, 5))
        try:
            await there.fail()
        except ValueError as error:
            print("remote error:", str(error))
        await xo.destroy_actor(there)
        print("destroyed; has_actor =", await xo.has_actor(there))


if __name__ == "__main__":
    asyncio.run(main())
