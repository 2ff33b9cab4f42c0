"""The one atomic write of the project (data/atomic_files.py): readers see the old file or the new
one, a failure leaves the old one and no temporary file, an exclusive write never replaces."""

from __future__ import annotations

import os
import stat

import pytest

from data.atomic_files import replaced_atomically, write_text_atomically


def test_the_new_content_replaces_the_old_with_the_users_permissions(tmp_path):
    target = tmp_path / "deep" / "report.json"
    write_text_atomically(target, "old\n")
    write_text_atomically(target, "nuovo\r\n")
    assert target.read_bytes() == "nuovo\r\n".encode()  # newlines as given
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o666 & ~umask
    assert [path.name for path in target.parent.iterdir()] == ["report.json"]


def test_a_failure_half_way_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "posts.jsonl"
    target.write_text("good\n", encoding="utf-8")
    with pytest.raises(RuntimeError, match="disk gone"):
        with replaced_atomically(target) as temporary:
            temporary.write_text("half", encoding="utf-8")
            raise RuntimeError("disk gone")
    assert target.read_text(encoding="utf-8") == "good\n"
    assert [path.name for path in tmp_path.iterdir()] == ["posts.jsonl"]


def test_an_exclusive_write_refuses_to_replace_and_keeps_both_contents_apart(tmp_path):
    target = tmp_path / "pull-0001.json"
    write_text_atomically(target, "first", exclusive=True)
    with pytest.raises(FileExistsError):
        write_text_atomically(target, "second", exclusive=True)
    assert target.read_text(encoding="utf-8") == "first"
    assert [path.name for path in tmp_path.iterdir()] == ["pull-0001.json"]


def test_a_prefix_names_the_temporary_file_for_cleanup_and_durable_writes_land(tmp_path):
    target = tmp_path / "routes.jsonl"
    with replaced_atomically(target, prefix=".routes.jsonl.partial-", durable=True) as temporary:
        assert temporary.name.startswith(".routes.jsonl.partial-") and temporary.parent == tmp_path
        temporary.write_text("x\n", encoding="utf-8")
        assert not target.exists()
    assert target.read_text(encoding="utf-8") == "x\n" and not temporary.exists()
