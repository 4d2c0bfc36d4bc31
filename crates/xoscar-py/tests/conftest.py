"""Fixtures: pools on loopback with ports the OS picks."""

import pytest

import xoscar_rs as xo


@pytest.fixture
async def pool():
    """A main pool with no sub pools."""
    pool = await xo.create_actor_pool("127.0.0.1", 0)
    async with pool:
        yield pool


@pytest.fixture
async def pool_with_subs():
    """A main pool labelled "main" with two sub pools labelled "gpu" and "cpu"."""
    pool = await xo.create_actor_pool(
        "127.0.0.1",
        2,
        labels=["main", "gpu", "cpu"],
        envs=[{"XO_TEST_ENV": "first"}, {"XO_TEST_ENV": "second"}],
    )
    async with pool:
        yield pool
