"""An `unittest.mock.AsyncMock` patch in an explored test: the payment gateway is mocked,
the race is in our code.

`charge_once` asks the (mocked) gateway whether an order was paid, then charges it: two
concurrent retries both see "unpaid" and charge twice. `test_retries_charge_once` fails
under plait; `test_retries_charge_once_locked` serializes the check and the charge and
passes, every interleaving explored. The mock's awaited side effects are task steps like
any other: plait schedules them.
"""

import asyncio
from unittest import mock

import plait


class Gateway:
    """The real client (it would talk to the network): the tests patch it."""

    async def is_paid(self, order: str) -> bool:
        raise NotImplementedError("talks to the payment provider")

    async def charge(self, order: str) -> None:
        raise NotImplementedError("talks to the payment provider")


gateway = Gateway()


async def charge_once(order: str) -> None:
    if not await gateway.is_paid(order):
        await gateway.charge(order)


def _fake_gateway() -> tuple[list[str], dict[str, mock.AsyncMock]]:
    charged: list[str] = []

    async def is_paid(order: str) -> bool:
        await asyncio.sleep(0.01)  # the round trip: virtual time
        return order in charged

    async def charge(order: str) -> None:
        await asyncio.sleep(0.01)
        charged.append(order)

    return charged, {"is_paid": mock.AsyncMock(side_effect=is_paid),
                     "charge": mock.AsyncMock(side_effect=charge)}


@plait.explore()
async def test_retries_charge_once() -> None:
    charged, fakes = _fake_gateway()
    with mock.patch.multiple(gateway, **fakes):
        await asyncio.gather(charge_once("order-7"), charge_once("order-7"))
    assert charged == ["order-7"], f"charged {len(charged)} times"


@plait.explore()
async def test_retries_charge_once_locked() -> None:
    charged, fakes = _fake_gateway()
    lock = asyncio.Lock()

    async def locked() -> None:
        async with lock:
            await charge_once("order-7")

    with mock.patch.multiple(gateway, **fakes):
        await asyncio.gather(locked(), locked())
    assert charged == ["order-7"]
    assert fakes["charge"].await_count == 1
