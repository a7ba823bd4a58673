"""Journal lines hold a batch column by column, a column of one repeated string or null written
once: rows come back exactly (numbers and flags that compare equal but print apart stay apart),
lines written row by row before still resume, an altered column line is refused, and a scan's
worker processes encode their batches byte for byte as the journal would."""

from __future__ import annotations

from audit.engine import journal
from audit.engine.journal import Journal

COLUMNS = ["seq", "status", "note", "score", "flagged"]
IDENTITY = {"source": "s"}


def batch(start: int) -> list[dict]:
    """Repeated strings and nulls, and numbers equal across types: 1, 1.0, True; 0.0 and -0.0."""
    scores = [1, 1.0, True, 0.0, -0.0, None]
    return [
        {"seq": start + i, "status": "ok", "note": None, "score": scores[i], "flagged": i % 2 == 0}
        for i in range(len(scores))
    ]


def test_a_batch_comes_back_exactly_with_each_value_its_type(tmp_path):
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS)
    log.append(batch(0))
    log.append(batch(6)[:1])  # one row: every string and null column written once
    log.close()
    line = (tmp_path / "j.jsonl").read_text(encoding="utf-8").splitlines()[1]
    assert line.count('"ok"') == 1 and '"cols":[6, [1, 2], ' in line
    rows = Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS).rows
    assert rows == batch(0) + batch(6)[:1]
    assert [(type(r["score"]), str(r["score"])) for r in rows] == [
        (type(r["score"]), str(r["score"])) for r in batch(0) + batch(6)[:1]
    ]


def test_lines_written_row_by_row_still_resume(tmp_path):
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS)
    header = log._header()
    digest = journal._digest("", header)
    lines = [header]
    for start in (0, 6):
        payload = log._encode([[r[c] for c in COLUMNS] for r in batch(start)])
        digest = journal._digest(digest, payload)
        lines.append(f"{journal.LINE_START}{digest}{journal.LINE_MIDDLE}{payload}}}\n")
    log.close()
    (tmp_path / "j.jsonl").write_text("".join(lines), encoding="utf-8")
    assert Journal(tmp_path / "j.jsonl", IDENTITY, True, COLUMNS).rows == batch(0) + batch(6)


def test_a_changed_repeated_value_is_refused_from_its_line(tmp_path):
    log = Journal(tmp_path / "j.jsonl", IDENTITY, False, COLUMNS)
    log.append(batch(0))
    log.append(batch(6))
    log.close()
    path = tmp_path / "j.jsonl"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = lines[2].replace('"ok"', '"error"', 1)  # one change rewrites a whole column
    path.write_text("".join(lines), encoding="utf-8")
    resumed = Journal(path, IDENTITY, True, COLUMNS)
    assert resumed.rows == batch(0)
    assert any("line 3" in note for note in resumed.notes)


def captured_appends(monkeypatch) -> list[tuple[list[dict], bytes | None, list[str]]]:
    """(rows, journal cells, journal columns) of every batch a scan hands its results store."""
    from audit.engine.results_store import ResultsStore

    real, seen = ResultsStore.append, []

    def append(self, rows, journal_cells=None):
        seen.append(([dict(r) for r in rows], journal_cells, self.journal.columns))
        real(self, rows, journal_cells)

    monkeypatch.setattr(ResultsStore, "append", append)
    return seen


def test_worker_processes_encode_their_batches_exactly_as_the_journal_would(demo_images, tmp_path, monkeypatch):
    from audit.engine.local import scan

    seen = captured_appends(monkeypatch)
    scan(str(demo_images), tmp_path / "out", workers=2, batch_size=4)
    assert seen and all(cells is not None for _, cells, _ in seen)  # every batch came encoded
    for rows, cells, columns in seen:
        assert cells == journal.encode_cells(rows, columns)


def test_rows_the_embedding_stage_completes_are_encoded_after_it(demo_images, tmp_path, monkeypatch):
    from audit.engine.config import ScanConfig
    from audit.engine.local import scan

    seen = captured_appends(monkeypatch)
    config = ScanConfig(detectors=("metadata",), embed=True, embedder="random")
    scan(str(demo_images), tmp_path / "out", workers=2, batch_size=4, config=config)
    assert seen and all(cells is None for _, cells, _ in seen)
