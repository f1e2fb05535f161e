"""Zipped probes: the upload door and the worker's unpack read a zip the same way.

The crafted zips are the ones a hostile participant made: each was accepted at upload before and
crashed the worker that unpacked it. Now each is refused at the door with ProbeFileError, and the
worker's unpack refuses it the same way (never another exception).
"""
from __future__ import annotations

import io
import struct
import warnings
import zipfile

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox import probe_files
from sandbox.probe_files import (
    ProbeFileError,
    check_probe_file,
    unpack_probe,
    zip_python_sources,
)

PROBE = b"print('hello from a zipped probe')\n" * 4


def zip_of(entries: list[tuple[str | zipfile.ZipInfo, bytes]], compression=zipfile.ZIP_DEFLATED) -> bytes:
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # zipfile warns about the duplicate names we want
        with zipfile.ZipFile(buffer, "w", compression) as archive:
            for name, data in entries:
                if isinstance(name, zipfile.ZipInfo) or name:
                    archive.writestr(name, data)
                else:  # writestr cannot write an empty name; open() can
                    with archive.open(zipfile.ZipInfo(""), "w") as sink:
                        sink.write(data)
    return buffer.getvalue()


# Offsets of the fields patched below, in the local file header and the central directory entry.
LOCAL = {"flags": 6, "method": 8, "size": 22}
CENTRAL = {"flags": 8, "method": 10, "size": 24}


def patched(content: bytes, member: str, **fields: int) -> bytes:
    """`content` with header fields of `member` overwritten in both of its headers (raw bytes)."""
    data = bytearray(content)
    info = zipfile.ZipFile(io.BytesIO(content)).getinfo(member)
    central = data.find(b"PK\x01\x02")
    while data[central + 46:central + 46 + len(member)] != member.encode() or \
            struct.unpack_from("<I", data, central + 42)[0] != info.header_offset:
        central = data.find(b"PK\x01\x02", central + 4)
    for field, value in fields.items():
        layout = "<I" if field == "size" else "<H"
        struct.pack_into(layout, data, info.header_offset + LOCAL[field], value)
        struct.pack_into(layout, data, central + CENTRAL[field], value)
    return bytes(data)


def with_flipped_byte(content: bytes, member: str) -> bytes:
    """A stored member's first data byte changed: its CRC no longer matches."""
    data = bytearray(content)
    info = zipfile.ZipFile(io.BytesIO(content)).getinfo(member)
    name_length, extra_length = struct.unpack_from("<HH", data, info.header_offset + 26)
    data[info.header_offset + 30 + name_length + extra_length] ^= 0xFF
    return bytes(data)


GOOD = zip_of([("probe.py", PROBE), ("lib/helpers.py", b"X = 1\n"), ("data/", b""), ("data/a.txt", b"a")])
STORED = zip_of([("probe.py", PROBE)], compression=zipfile.ZIP_STORED)

CRAFTED_ZIPS = {
    "encrypted": (patched(GOOD, "probe.py", flags=0x1), "is encrypted; upload an unencrypted .zip"),
    "bad CRC": (with_flipped_byte(STORED, "probe.py"), "The .zip entry 'probe.py' is damaged (Bad CRC-32"),
    "forged larger size": (patched(STORED, "probe.py", size=1000), "its size does not match its header"),
    "forged smaller size": (patched(GOOD, "probe.py", size=3), "The .zip entry 'probe.py' is damaged"),
    "compression method 99": (patched(GOOD, "probe.py", method=99), "uses compression method 99; use stored or deflated"),
    "duplicate probe.py": (zip_of([("probe.py", PROBE), ("probe.py", b"import os")]), "The .zip holds 'probe.py' twice."),
    "file and folder clash": (zip_of([("probe.py", PROBE), ("lib", b"x"), ("lib/a.py", b"y")]),
                              "The .zip holds 'lib' both as a file and as a folder."),
    "'.' name": (zip_of([("probe.py", PROBE), (".", b"x")]), "The .zip entry '.' has an unusable name"),
    "empty name": (zip_of([("probe.py", PROBE), ("", b"x")]), "The .zip entry '' has an unusable name"),
    "over-long name": (zip_of([("probe.py", PROBE), ("n" * 300 + ".py", b"x")]), "a name longer than 255 bytes"),
    "over-long path": (zip_of([("probe.py", PROBE), ("/".join(["d" * 200] * 8) + "/a.py", b"x")]),
                       "longer than 1024 bytes or deeper than 16 folders"),
}


def test_a_good_zip_passes_the_door_and_unpacks(tmp_path):
    check_probe_file(name="probe.zip", content=GOOD)
    (tmp_path / "probe.zip").write_bytes(GOOD)
    dest = unpack_probe(tmp_path / "probe.zip", tmp_path / "out")
    assert (dest / "probe.py").read_bytes() == PROBE and (dest / "lib" / "helpers.py").read_bytes() == b"X = 1\n"
    assert (dest / "data" / "a.txt").read_bytes() == b"a"


def test_folder_entries_may_come_after_their_files_or_twice(tmp_path):
    content = zip_of([("probe.py", PROBE), ("lib/a.py", b"A = 1"), ("lib/", b""), ("lib/", b"")])
    check_probe_file(name="probe.zip", content=content)
    (tmp_path / "probe.zip").write_bytes(content)
    assert (unpack_probe(tmp_path / "probe.zip", tmp_path / "out") / "lib" / "a.py").read_bytes() == b"A = 1"


def test_a_folder_entry_named_like_a_file_is_a_clash():
    with pytest.raises(ProbeFileError, match="holds 'lib' both as a file and as a folder"):
        check_probe_file(name="probe.zip", content=zip_of([("probe.py", PROBE), ("lib", b"x"), ("lib/", b"")]))


@pytest.mark.parametrize("kind", CRAFTED_ZIPS)
def test_a_crafted_zip_is_refused_at_the_door_and_by_the_worker_with_the_same_message(tmp_path, kind):
    content, message = CRAFTED_ZIPS[kind]
    with pytest.raises(ProbeFileError) as at_door:
        check_probe_file(name="probe.zip", content=content)
    assert message in str(at_door.value)
    (tmp_path / "probe.zip").write_bytes(content)
    with pytest.raises(ProbeFileError) as at_worker:
        unpack_probe(tmp_path / "probe.zip", tmp_path / "out")
    assert str(at_worker.value) == str(at_door.value)
    with pytest.raises(ProbeFileError):
        zip_python_sources(content=content)


def test_members_beyond_the_unpacked_budget_are_refused_while_inflating(monkeypatch):
    monkeypatch.setattr(probe_files, "ZIP_MAX_UNPACKED_BYTES", 1000)
    # Headers claiming 1 byte each, so only the inflating count can see the real size.
    content = zip_of([("probe.py", PROBE), ("big.bin", b"\0" * 5000)])
    forged = patched(content, "big.bin", size=1)
    with pytest.raises(ProbeFileError, match="damaged|unpacks to more than 1000 bytes"):
        check_probe_file(name="probe.zip", content=forged)
    with pytest.raises(ProbeFileError, match="unpacks to more than 1000 bytes"):
        check_probe_file(name="probe.zip", content=content)


def test_the_sources_shown_are_the_python_files_probe_py_first():
    sources = zip_python_sources(content=GOOD)
    assert [name for name, _ in sources] == ["probe.py", "lib/helpers.py"]
    assert zip_python_sources(content=GOOD, max_bytes=5)[0] == ("probe.py", PROBE[:5])


@settings(max_examples=200, deadline=None)
@given(edits=st.lists(st.tuples(st.integers(0, len(GOOD) - 1), st.integers(0, 255)), min_size=1, max_size=4))
def test_whatever_the_door_accepts_the_worker_unpacks(tmp_path_factory, edits):
    """Bytes of a good zip changed anywhere: refused with ProbeFileError or accepted and unpackable."""
    data = bytearray(GOOD)
    for offset, value in edits:
        data[offset] = value
    content = bytes(data)
    scratch = tmp_path_factory.mktemp("zip")
    (scratch / "probe.zip").write_bytes(content)
    try:
        check_probe_file(name="probe.zip", content=content)
    except ProbeFileError as exc:
        assert str(exc)
        with pytest.raises(ProbeFileError):
            unpack_probe(scratch / "probe.zip", scratch / "out")
        return
    dest = unpack_probe(scratch / "probe.zip", scratch / "out")
    assert (dest / "probe.py").is_file()
    zip_python_sources(content=content)
