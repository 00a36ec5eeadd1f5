"""Backup times: what a manifest records, its ID and its text parse back to the same
instant, so ``restore --at <a backup's time>`` reaches exactly that backup."""

from __future__ import annotations

import pytest

from atlas.errors import BackupError
from atlas.services import catalog


@pytest.mark.parametrize("now", [1764694000.1234564, 1764694000.9999997, 1764694000.0, 0.5])
def test_created_time_text_and_id_agree(now: float) -> None:
    created = catalog.exact(now)
    assert catalog.parse_time(catalog.iso(created)) == created
    stamp = catalog.new_id(now, "full").removeprefix("atlas-").removesuffix("-full")
    assert catalog.iso(created).replace("-", "").replace(":", "") == stamp


def test_times_people_type() -> None:
    assert catalog.parse_time("2026-12-02T17:00:00Z") == 1796230800.0
    assert catalog.parse_time("2026-12-02 17:00") == 1796230800.0
    assert catalog.parse_time("1796230800.5") == 1796230800.5
    with pytest.raises(BackupError, match="expected a UTC time like"):
        catalog.parse_time("last tuesday")
