"""The shipment part of the store contract: what every ``uow.shipments`` must do.

:class:`~orderkit.testing.contracts.StoreContract` includes it (a separate module
only to keep files short); it needs the ``store`` fixture that ``StoreContract`` provides.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from orderkit.domain.carrier import Label, Parcel, Rate, TrackingEvent, TrackingStatus
from orderkit.domain.events import ShipmentCreated, ShipmentLabelled
from orderkit.domain.shipment import Shipment, ShipmentLine
from orderkit.domain.values import Address
from orderkit.errors import ConcurrencyError, DuplicateKey, InvalidField, ShipmentNotFound
from orderkit.money import Money
from orderkit.ports import Store
from orderkit.serialization import dumps

__all__ = ["ShipmentStoreContract", "labelled", "make_shipment"]

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=timezone.utc)
ADDRESS = Address("Ann Example", "1 Main St", "Berlin", "10115", "DE")


def make_shipment(shipment_id: str, order_id: str, *, at: datetime = T0) -> Shipment:
    """A pending shipment of two lines from ``WH-1``, its ``ShipmentCreated`` pending."""
    return Shipment.create(
        shipment_id=shipment_id,
        order_id=order_id,
        location="WH-1",
        ship_to=ADDRESS,
        lines=[ShipmentLine("L1", "SKU-A", 2), ShipmentLine("L2", "SKU-B", 1)],
        at=at,
    )


def labelled(shipment: Shipment, tracking_number: str) -> Shipment:
    """``shipment`` picked, packed and labelled with ``tracking_number`` (a small PDF)."""
    shipment.pick(T0)
    shipment.pack([Parcel(900, 300, 200, 100)], T0)
    rate = Rate("testcarrier", "standard", Money("5.90", "EUR"), 2, "rate-1")
    label = Label("testcarrier", "standard", tracking_number, "application/pdf", b"%PDF-1.4 x")
    shipment.attach_label(rate, label, T0)
    return shipment


def _add(store: Store, *shipments: Shipment) -> None:
    with store() as uow:
        for shipment in shipments:
            uow.shipments.add(shipment)
        uow.commit()


def _get(store: Store, shipment_id: str) -> Shipment:
    with store() as uow:
        return uow.shipments.get(shipment_id)


class ShipmentStoreContract:
    """Shipments in a store: staging, versions, lookups, events (mixed into StoreContract)."""

    def test_added_shipment_reads_back_identical_with_version_one(self, store: Store) -> None:
        shipment = labelled(make_shipment("shp-1", "ord-1"), "TRK-1")
        _add(store, shipment)
        loaded = _get(store, "shp-1")
        assert loaded.version == 1
        assert dumps(loaded) == dumps(shipment)
        assert loaded.label is not None
        assert loaded.label.document == b"%PDF-1.4 x"  # bytes survive the document

    def test_unknown_shipment_is_not_found(self, store: Store) -> None:
        with store() as uow, pytest.raises(ShipmentNotFound):
            uow.shipments.get("nope")
        with store() as uow:
            assert uow.shipments.by_tracking_number("nope") is None
            assert list(uow.shipments.for_order("nope")) == []

    def test_shipments_by_order_state_and_tracking_number(self, store: Store) -> None:
        later = make_shipment("shp-a", "ord-1", at=T0 + timedelta(hours=1))
        earlier = labelled(make_shipment("shp-b", "ord-1"), "TRK-B")
        other = make_shipment("shp-c", "ord-2")
        _add(store, later, earlier, other)
        with store() as uow:
            assert [s.id for s in uow.shipments.for_order("ord-1")] == ["shp-b", "shp-a"]
            found = uow.shipments.by_tracking_number("TRK-B")
            assert found is not None
            assert found.id == "shp-b"
            assert [s.id for s in uow.shipments.list(state="pending")] == ["shp-c", "shp-a"]
            assert [s.id for s in uow.shipments.list(state="labelled")] == ["shp-b"]
            assert [s.id for s in uow.shipments.list(limit=1, offset=1)] == ["shp-c"]
            with pytest.raises(InvalidField):
                uow.shipments.list(limit=0)

    def test_a_label_attached_later_is_found_by_its_tracking_number(self, store: Store) -> None:
        _add(store, make_shipment("shp-1", "ord-1"))
        with store() as uow:
            shipment = labelled(uow.shipments.get("shp-1"), "TRK-9")
            uow.shipments.save(shipment)
            uow.commit()
        with store() as uow:
            found = uow.shipments.by_tracking_number("TRK-9")
            assert found is not None
            assert found.state == "labelled"
            assert found.version == 2

    def test_stale_shipment_save_raises_and_changes_nothing(self, store: Store) -> None:
        _add(store, make_shipment("shp-1", "ord-1"))
        with store() as first, store() as second:
            one, two = first.shipments.get("shp-1"), second.shipments.get("shp-1")
            one.pick(T0)
            first.shipments.save(one)
            first.commit()
            two.cancel("changed my mind", T0)
            second.shipments.save(two)
            with pytest.raises(ConcurrencyError):
                second.commit()
        loaded = _get(store, "shp-1")
        assert loaded.state == "picked"
        assert loaded.version == 2

    def test_duplicate_id_or_tracking_number_commits_nothing(self, store: Store) -> None:
        _add(store, labelled(make_shipment("shp-1", "ord-1"), "TRK-1"))
        pending = store.outbox.pending()
        for duplicate in (
            make_shipment("shp-1", "ord-9"),
            labelled(make_shipment("shp-2", "ord-2"), "TRK-1"),
        ):
            with store() as uow:
                uow.shipments.add(duplicate)
                with pytest.raises(DuplicateKey):
                    uow.commit()
        assert store.outbox.pending() == pending
        with store() as uow:
            assert list(uow.shipments.for_order("ord-2")) == []
            assert list(uow.shipments.for_order("ord-9")) == []

    def test_shipment_events_reach_the_outbox_in_order(self, store: Store) -> None:
        _add(store, make_shipment("shp-1", "ord-1"))
        with store() as uow:
            uow.shipments.save(labelled(uow.shipments.get("shp-1"), "TRK-1"))
            uow.commit()
        records = store.outbox.claim(worker="w", limit=10, lease_seconds=30, now=T0)
        kinds = [type(r.event) for r in records]
        assert kinds[0] is ShipmentCreated
        assert kinds[-1] is ShipmentLabelled
        assert {r.aggregate_id for r in records} == {"ord-1"}

    def test_scans_and_eta_survive_a_round_trip(self, store: Store) -> None:
        shipment = labelled(make_shipment("shp-1", "ord-1"), "TRK-1")
        shipment.hand_over(T0, T0.date() + timedelta(days=3))
        scan = TrackingEvent(
            "scan-1",
            "TRK-1",
            TrackingStatus.OUT_FOR_DELIVERY,
            T0 + timedelta(days=2),
            eta=T0.date() + timedelta(days=2),
        )
        shipment.apply_scan(scan, T0)
        _add(store, shipment)
        loaded = _get(store, "shp-1")
        assert loaded.state == "out_for_delivery"
        assert loaded.scans == (scan,)
        assert loaded.eta == T0.date() + timedelta(days=2)
