"""Child-process bodies for the oversell and deadlock tests (run as a script, not collected).

python tests/stock_worker.py reserve DB WORKER ATTEMPTS GO [MODULE:STORE]
    ATTEMPTS orders of 1 unit of HOT_SKU, one per command; prints "ok ORDER_ID" or "out"
    per attempt. With MODULE:STORE the shop runs on that store class (``STORE(DB)``)
    instead of ``Shop.open(DB)``: the naive adapter of test_oversell.py.
python tests/stock_worker.py multiline DB WORKER COUNT ORDER GO
    COUNT orders with one line per SKU of MULTI_SKUS, listed in ORDER ("asc" or "desc");
    prints "ok ORDER_ID SKU=QTY ..." or "out SKU" per order.

Either prints "error TYPE: MESSAGE" for any other failure and goes on. Both start
together: each creates ``GO.WORKER.ready`` once its shop is open, then waits for the
file GO to appear.
"""

from __future__ import annotations

import importlib
import os
import sys
import time

import orderkit as ok

HOT_SKU = "HOT-1"
MULTI_SKUS = ("DL-A", "DL-B", "DL-C", "DL-D")
SETTINGS = ok.ShopSettings(dispatch="worker")
GO_TIMEOUT = 120.0


def quantities(worker: str, number: int) -> dict[str, int]:
    """What order ``number`` of ``worker`` asks of each SKU (1 to 3 units, varying)."""
    seed = sum(map(ord, worker))
    return {sku: 1 + (seed + number + index) % 3 for index, sku in enumerate(MULTI_SKUS)}


def order(worker: str, lines: list[tuple[str, int]]) -> ok.PlaceOrder:
    return ok.PlaceOrder(
        customer=ok.Customer(f"cust-{worker}", "Ann Example", "ann@example.com"),
        shipping_address=ok.Address("Ann Example", "1 Main St", "Berlin", "10115", "DE"),
        lines=[
            ok.LineItem(f"L{n}", sku, f"Item {sku}", quantity, ok.Money("9.99", "EUR"))
            for n, (sku, quantity) in enumerate(lines, start=1)
        ],
        payment_token="tok_test",
    )


def open_shop(path: str, store: str | None) -> ok.Shop:
    if store is None:
        return ok.Shop.open(path, settings=SETTINGS)
    module, name = store.split(":")
    return ok.Shop(getattr(importlib.import_module(module), name)(path), settings=SETTINGS)


def wait_for_go(go: str, worker: str) -> None:
    open(f"{go}.{worker}.ready", "w").close()
    deadline = time.monotonic() + GO_TIMEOUT
    while not os.path.exists(go):
        if time.monotonic() > deadline:
            raise SystemExit(f"{worker}: no go signal after {GO_TIMEOUT} s")
        time.sleep(0.001)


def error(exc: Exception) -> str:
    return f"error {type(exc).__name__}: {exc}".replace("\n", " ")


def reserve(path: str, worker: str, attempts: int, go: str, store: str | None) -> None:
    with open_shop(path, store) as shop:
        commands = [order(worker, [(HOT_SKU, 1)]) for _ in range(attempts)]
        wait_for_go(go, worker)
        for command in commands:
            try:
                placed = shop.orders.place(command)
            except ok.OutOfStock:
                print("out", flush=True)
            except Exception as exc:
                print(error(exc), flush=True)
            else:
                print("ok", placed.id, flush=True)


def multiline(path: str, worker: str, count: int, direction: str, go: str) -> None:
    if direction not in ("asc", "desc"):
        raise SystemExit(f"ORDER must be asc or desc, not {direction!r}")
    with open_shop(path, None) as shop:
        plans = [
            sorted(quantities(worker, number).items(), reverse=direction == "desc")
            for number in range(count)
        ]
        wait_for_go(go, worker)
        for lines in plans:
            try:
                placed = shop.orders.place(order(worker, lines))
            except ok.OutOfStock as exc:
                print("out", exc.sku, flush=True)
            except Exception as exc:
                print(error(exc), flush=True)
            else:
                print("ok", placed.id, *(f"{sku}={qty}" for sku, qty in lines), flush=True)


def main() -> None:
    action, path = sys.argv[1], sys.argv[2]
    if action == "reserve":
        worker, attempts, go = sys.argv[3], int(sys.argv[4]), sys.argv[5]
        reserve(path, worker, attempts, go, sys.argv[6] if len(sys.argv) > 6 else None)
    elif action == "multiline":
        worker, count, direction, go = sys.argv[3], int(sys.argv[4]), sys.argv[5], sys.argv[6]
        multiline(path, worker, count, direction, go)
    else:
        raise SystemExit(f"unknown action {action}")


if __name__ == "__main__":
    main()
