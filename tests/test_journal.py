"""The resume journal commits in groups: every batch reaches the file at once (a killed process
loses none), fsync runs at most every SYNC_SECONDS and when the journal starts over or closes, and
journals of the older one-object-per-row format still resume."""

from __future__ import annotations

import json

from audit.engine import journal
from audit.engine.journal import Journal

COLUMNS = ["seq", "id", "score", "flagged"]
IDENTITY = {"source": "s", "detectors": ["metadata"]}


def rows(start: int, n: int) -> list[dict]:
    return [{"seq": i, "id": f"img{i}.png", "score": i / 10, "flagged": i % 2 == 0} for i in range(start, start + n)]


def count_fsyncs(monkeypatch) -> list[int]:
    calls = []
    real = journal.os.fsync
    monkeypatch.setattr(journal.os, "fsync", lambda fd: (calls.append(fd), real(fd))[1])
    return calls


def test_batches_within_the_interval_share_one_fsync(tmp_path, monkeypatch):
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS, sync_seconds=3600)
    fsyncs = count_fsyncs(monkeypatch)
    for start in range(0, 160, 16):
        log.append(rows(start, 16))
    assert fsyncs == []  # ten batches, no fsync yet
    log.close()
    assert len(fsyncs) == 1  # closing commits them


def test_an_fsync_follows_once_the_interval_has_passed(tmp_path, monkeypatch):
    clock = [100.0]
    monkeypatch.setattr(journal.time, "monotonic", lambda: clock[0])
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS, sync_seconds=1.0)
    fsyncs = count_fsyncs(monkeypatch)
    log.append(rows(0, 16))
    clock[0] += 0.5
    log.append(rows(16, 16))
    assert fsyncs == []
    clock[0] += 0.6
    log.append(rows(32, 16))
    assert len(fsyncs) == 1
    log.append(rows(48, 16))
    assert len(fsyncs) == 1


def test_a_killed_process_loses_no_written_batch(tmp_path):
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS, sync_seconds=3600)
    log.append(rows(0, 16))
    log.append(rows(16, 5))  # not fsynced, not closed: what a kill -9 leaves is in the file
    resumed = Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS)
    assert resumed.rows == rows(0, 21)


def test_a_partial_last_batch_is_dropped_and_the_rest_resumes(tmp_path):
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS)
    log.append(rows(0, 16))
    log.append(rows(16, 16))
    log.close()
    text = (tmp_path / "j.jsonl").read_text()
    (tmp_path / "j.jsonl").write_text(text[:-20])  # killed inside the second batch's write
    resumed = Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS)
    assert resumed.rows == rows(0, 16)
    resumed.append(rows(16, 16))
    resumed.close()
    assert Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS).rows == rows(0, 32)


def test_a_journal_of_one_object_per_row_resumes_and_is_rewritten(tmp_path):
    old = [json.dumps({"journal": IDENTITY})] + [json.dumps(r) for r in rows(0, 3)]
    (tmp_path / "j.jsonl").write_text("\n".join(old) + "\n")
    log = Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS)
    assert log.rows == rows(0, 3)
    log.append(rows(3, 2))
    log.close()
    assert Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS).rows == rows(0, 5)


def test_restart_keeps_only_the_header_and_a_missing_column_is_null(tmp_path):
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS)
    log.append(rows(0, 4))
    log.restart()
    log.append([{"seq": 9, "id": "x.png", "score": None}])  # no "flagged"
    log.close()
    assert Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS).rows == [
        {"seq": 9, "id": "x.png", "score": None, "flagged": None}
    ]
