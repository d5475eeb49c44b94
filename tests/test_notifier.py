"""The Notifier has one method per catalog event, and each records data the catalog accepts."""

from __future__ import annotations

import inspect

from brain.notifier import Notifier
from shared.events import CATALOG, validate_data


def test_one_method_per_catalog_event() -> None:
    methods = {
        name for name, _ in inspect.getmembers(Notifier, inspect.isfunction) if name[0] != "_"
    }
    assert methods - {"take"} == {name.value for name in CATALOG}


def test_every_method_records_valid_data_in_order() -> None:
    notifier = Notifier()
    notifier.risk_halt("max drawdown")
    notifier.scan_complete(6, 2)
    notifier.risk_resumed()
    events = notifier.take()
    assert [name.value for name, _ in events] == ["risk_halt", "scan_complete", "risk_resumed"]
    for name, data in events:
        validate_data(name, data)
    assert notifier.take() == []
