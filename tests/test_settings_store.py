"""The settings tree: lookup order, shadowing, applicability, computed blocks."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from conftest import run_script
from pyipxe.errors import IpxeError
from pyipxe.settings import predefined as p
from pyipxe.settings.builtin import cpuid_block, memmap_block, smbios_block
from pyipxe.settings.store import SettingsTree, parse_tag


def test_numeric_tags() -> None:
    assert parse_tag("67") == 67
    assert parse_tag("175.8") == 0xAF08
    assert parse_tag("0x43") == 67
    assert parse_tag("filename") == 0


def test_root_shadows_children_and_clear_reveals() -> None:
    tree = SettingsTree()
    net0, net0_setting = tree.parse_name("net0/ip", create=True)
    tree.store_text(net0, net0_setting, "10.0.0.5")
    assert tree.fetch_text("ip") == "10.0.0.5"
    root, ip = tree.parse_name("ip")
    tree.store_text(root, ip, "192.168.0.1")
    assert tree.fetch_text("ip") == "192.168.0.1"
    found = tree.fetch(ip)
    assert found is not None and found.display_name() == "ip:ipv4"
    tree.store_text(root, ip, "")
    found = tree.fetch(ip)
    assert found is not None and found.display_name() == "net0/ip:ipv4"


def test_predefined_by_number_and_display_truncation() -> None:
    tree = SettingsTree()
    block, setting = tree.parse_name("67", create=True)
    assert setting is p.FILENAME
    tree.store_text(block, setting, "pxelinux.0")
    assert tree.fetch_text("filename") == "pxelinux.0"
    block, setting = tree.parse_name("abcdefghijklmnopqrstuvwxyz01234", create=True)
    tree.store_text(block, setting, "v")
    found = tree.fetch(setting)
    assert found is not None and found.display_name() == "abcdefghijklmnopqrstuvwxyz01234"


def test_unknown_scope_and_type() -> None:
    tree = SettingsTree()
    with pytest.raises(IpxeError):
        tree.parse_name("nosuch/x")
    with pytest.raises(IpxeError):
        tree.parse_name("x:nosuchtype")
    assert tree.fetch_text("nosuch/x") == ""


def test_smbios_from_sysfs(tmp_path: Path) -> None:
    (tmp_path / "sys_vendor").write_text("Dell Inc.\n")
    (tmp_path / "product_uuid").write_text("4C4C4544-0042-3510-8051-B3C04F4E4B31\n")
    block = smbios_block(tmp_path)
    assert block.fetch_local(p.MANUFACTURER) == (p.MANUFACTURER, b"Dell Inc.")
    found = block.fetch_local(p.UUID)
    assert found is not None and p.UUID.type is not None
    assert p.UUID.type.format(found[1]) == "4c4c4544-0042-3510-8051-b3c04f4e4b31"
    assert block.fetch_local(p.SERIAL) is None  # absent files are unset, not errors


def test_cpu_and_memory(tmp_path: Path) -> None:
    (tmp_path / "cpuinfo").write_text("vendor_id\t: GenuineIntel\nmodel name\t: Intel(R) Xeon(R)\n")
    (tmp_path / "meminfo").write_text("MemTotal:       24576000 kB\n")
    assert cpuid_block(tmp_path / "cpuinfo").fetch_local(p.CPUVENDOR) == (p.CPUVENDOR, b"GenuineIntel")
    found = memmap_block(tmp_path / "meminfo").fetch_local(p.MEMSIZE)
    assert found is not None and int.from_bytes(found[1], "big") == 24000


def test_unixtime_is_writable_and_clear_restores_clock() -> None:
    # Unscoped, the value lands at the root and shadows the clock; builtin/ sets the clock itself.
    run = run_script(
        "#!ipxe\nset unixtime:uint32 0x10\nshow unixtime\nclear unixtime\n"
        "set builtin/unixtime 0x1000\nshow unixtime\nclear builtin/unixtime\necho ${unixtime:int32}\n"
    )
    lines = run.output.splitlines()
    assert lines[0] == "unixtime:uint32 = 0x10"
    assert lines[1] in ("builtin/unixtime:uint32 = 0x1000", "builtin/unixtime:uint32 = 0x1001")
    assert abs(int(lines[2]) - time.time()) < 5


def _dmi_table() -> bytes:
    uuid = bytes(range(16))
    system = bytes([1, 24, 0x01, 0x00, 1, 2, 0, 3]) + uuid + b"Dell Inc.\0PowerEdge R210\0SN123\0\0"
    board = bytes([2, 8, 0x02, 0x00, 1, 2, 0, 0]) + b"Dell\0 0K39SM\0\0"
    return system + board + bytes([127, 4, 0xFF, 0xFF]) + b"\0\0"


def test_raw_smbios_fields_from_the_dmi_table(tmp_path: Path) -> None:
    (tmp_path / "DMI").write_bytes(_dmi_table())
    block = smbios_block(tmp_path / "no-dmi-id", tmp_path / "DMI")
    tree = SettingsTree()
    tree.root.register(block)
    assert tree.fetch_text("smbios/1.4.0") == "Dell Inc."  # string number at offset 4
    assert tree.fetch_text("manufacturer") == "Dell Inc."  # named setting falls back to the table
    assert tree.fetch_text("smbios/2.0.2") == " 0K39SM"  # offset 0: string number 2
    assert tree.fetch_text("smbios/1.8.4") == "00:01:02:03"  # raw bytes default to hex
    assert tree.fetch_text("smbios/1.8.4:uint32") == "0x10203"
    assert tree.fetch_text("serial") == "SN123"
    assert tree.fetch_text("smbios/3.4.0") == ""  # no such structure
    assert tree.fetch_text("smbios/1.30.2") == ""  # past the formatted area
    found = tree.fetch(tree.parse_name("smbios/1.5.0")[1])
    assert found is not None and found.display_name() == "smbios/product:string"


def test_hostile_dmi_tables_never_raise() -> None:
    from hypothesis import given
    from hypothesis import strategies as st

    from pyipxe.settings import smbios

    @given(st.binary(max_size=300), st.integers(0, 0xFFFFFFFF))
    def check(data: bytes, tag: int) -> None:
        smbios.fetch(smbios.parse_table(data), tag)

    check()
