"""Actor classes the tests share (importable by sub pools, which get this process's path),
and their one polling helper."""

import asyncio
import os

import xoscar_rs as xo


async def eventually(check, seconds=10, what="never happened"):
    """Polls the coroutine function ``check`` until it gives true, failing after ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not await check():
        assert asyncio.get_running_loop().time() < deadline, what
        await asyncio.sleep(0.02)


class Counter(xo.Actor):
    def __init__(self, start=0):
        self.value = start
        self.cancelled = 0
        self.log = []

    def add(self, n=1):
        self.value += n
        return self.value

    def get(self):
        return self.value

    async def slow_add(self, n, seconds):
        self.log.append(("start", n))
        await asyncio.sleep(seconds)
        self.value += n
        self.log.append(("end", n))
        return self.value

    def get_log(self):
        return self.log

    async def sleep(self, seconds):
        try:
            await asyncio.sleep(seconds)
            return self.value
        except asyncio.CancelledError:
            self.cancelled += 1
            raise

    async def sleep_or_answer(self, seconds):
        try:
            await asyncio.sleep(seconds)
            return "slept"
        except asyncio.CancelledError:
            self.cancelled += 1
            return "cancelled, answered anyway"

    def cancelled_count(self):
        return self.cancelled

    def pid(self):
        return os.getpid()

    def env(self, key):
        return os.environ.get(key)

    def fail(self, message):
        raise ValueError(message)

    async def call_other(self, ref, n):
        return await ref.add(n)


class Unlocked(xo.Actor):
    def __init__(self):
        self.log = []

    @xo.no_lock
    async def step(self, n, seconds):
        self.log.append(n)
        await asyncio.sleep(seconds)
        self.log.append(n + 2)

    def get_log(self):
        return self.log


class Concurrent(xo.StatelessActor):
    def __init__(self):
        self.running = 0
        self.most = 0

    async def work(self, seconds):
        self.running += 1
        self.most = max(self.most, self.running)
        await asyncio.sleep(seconds)
        self.running -= 1
        return self.most


class Hooks(xo.Actor):
    destroyed = []

    def __init__(self, fail_in=None):
        if fail_in == "init":
            raise ValueError("bad init")
        self.fail_in = fail_in
        self.created = False

    async def __post_create__(self):
        if self.fail_in == "post_create":
            raise TypeError("bad post_create")
        # A self-call in a hook reaches the actor through its local ref.
        self.created = await self.ref().whoami()

    async def __pre_destroy__(self):
        Hooks.destroyed.append(self.fail_in)
        if self.fail_in == "pre_destroy":
            raise RuntimeError("bad pre_destroy")
        if self.fail_in == "pre_destroy_calls_nobody":
            await xo.ActorRef(self.address, "nobody").anything()

    def whoami(self):
        return (self.address, self.uid)

    def was_created(self):
        return self.created


class Producer(xo.StatelessActor):
    def __init__(self):
        self.produced = 0

    @xo.generator
    async def count(self, limit=None):
        n = 0
        while limit is None or n < limit:
            self.produced = n + 1
            yield n
            n += 1

    @xo.generator
    def blocking(self, n):
        for i in range(n):
            yield i * i

    @xo.generator
    async def fails_after(self, n):
        for i in range(n):
            yield i
        raise KeyError("generator broke")

    def produced_so_far(self):
        return self.produced

    def live_generators(self):
        return len(self._generators)


class Extended(xo.Actor):
    """A serial actor whose async method is @extensible (a wrapper, not a coroutine
    function): its bodies must still run one at a time."""

    def __init__(self):
        self.log = []

    @xo.extensible
    async def step(self, n):
        self.log.append(("start", n))
        await asyncio.sleep(0.05)
        self.log.append(("end", n))
        return n

    def get_log(self):
        return self.log
