"""A sub pool's process: ``python -m xoscar_rs._subpool``, started by its main pool with
its settings in the environment. Serves its actors on this process's asyncio loop until the
main pool goes (the runtime then ends the process)."""

import asyncio

from . import _native


async def _serve():
    pool = await _native.serve_sub_pool()
    try:
        await asyncio.Event().wait()
    finally:
        await pool.stop()


if __name__ == "__main__":
    asyncio.run(_serve())
