"""An order violation at start-up: the client uses the service before it has connected.

`test_startup` starts the service in the background and queries it straight away, which
works in the default order and fails when the service's connect is slower than the
client. The fixed version waits on an `asyncio.Event` the service sets once it is ready.
"""

import asyncio

import plait


class Service:
    def __init__(self) -> None:
        self.connection: dict[str, str] | None = None
        self.ready = asyncio.Event()

    async def start(self) -> None:
        await asyncio.sleep(0.01)  # connecting takes a moment
        self.connection = {"greeting": "hello"}
        self.ready.set()

    async def query(self, key: str) -> str:
        assert self.connection is not None, "query() before the service connected"
        return self.connection[key]


async def client(service: Service) -> str:
    await asyncio.sleep(0.02)  # "surely the service is up by now"
    return await service.query("greeting")


async def patient_client(service: Service) -> str:
    await service.ready.wait()
    return await service.query("greeting")


@plait.explore()
async def test_startup() -> None:
    service = Service()
    starting = asyncio.create_task(service.start())
    assert await client(service) == "hello"
    await starting


@plait.explore()
async def test_startup_waits_for_ready() -> None:
    service = Service()
    starting = asyncio.create_task(service.start())
    assert await patient_client(service) == "hello"
    await starting
