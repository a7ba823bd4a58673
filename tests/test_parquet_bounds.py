"""Parquet cells are bounded before decompression: a row group whose column chunks would expand like a
decompression bomb (by the file's metadata) is one error row and is never read; large row groups of
incompressible cells are read a few rows at a time; a cell over the item size limit is an error row."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq

from audit.sources import parquet
from audit.sources.parquet import iter_parquet
from tests.conftest import image_bytes, noise_image

MB = 1024 * 1024


def write_groups(path, groups: list[list[bytes]]) -> None:
    """One row group per list of cells, zstd-compressed."""
    schema = pa.schema([("image", pa.binary())])
    with pq.ParquetWriter(path, schema, compression="zstd") as writer:
        for cells in groups:
            writer.write_table(pa.table({"image": cells}, schema=schema))


def read_row_groups(monkeypatch) -> list:
    """Spy: the row groups and batch sizes the reader asks pyarrow to decompress."""
    asked = []
    real = pq.ParquetFile.iter_batches

    def iter_batches(self, batch_size=65536, row_groups=None, columns=None, **kwargs):
        asked.append((tuple(row_groups or ()), batch_size))
        return real(self, batch_size=batch_size, row_groups=row_groups, columns=columns, **kwargs)

    monkeypatch.setattr(pq.ParquetFile, "iter_batches", iter_batches)
    return asked


def test_a_zstd_bomb_row_group_is_one_error_row_and_never_decompressed(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "ROW_GROUP_BYTES", 2 * MB)
    png = image_bytes(noise_image())
    write_groups(tmp_path / "t.parquet", [[png] * 3, [bytes([i]) + bytes(MB) for i in range(4)], [png] * 2])
    asked = read_row_groups(monkeypatch)

    records = list(iter_parquet([str(tmp_path / "t.parquet")], None))

    assert [r.id for r in records] == [
        "t.parquet/0",
        "t.parquet/1",
        "t.parquet/2",
        "t.parquet/row group 1",
        "t.parquet/7",
        "t.parquet/8",
    ]
    bomb = records[3]
    assert bomb.error.startswith("decompression bomb: parquet row group 1 (4 rows) expands to")
    assert bomb.uri.endswith("t.parquet#3")
    assert all(r.error is None for r in records if r is not bomb)
    assert [groups for groups, _ in asked] == [(0,), (2,)]  # the bomb's row group was never read


def test_large_incompressible_row_groups_are_read_a_few_rows_at_a_time(tmp_path, monkeypatch):
    import numpy as np

    monkeypatch.setattr(parquet, "ROW_GROUP_BYTES", 2 * MB)
    monkeypatch.setattr(parquet, "READ_BYTES", 2 * MB)
    rng = np.random.default_rng(0)
    cells = [rng.integers(0, 256, MB // 2, dtype=np.uint8).tobytes() for _ in range(12)]  # 6 MB, ratio 1
    write_groups(tmp_path / "t.parquet", [cells])
    asked = read_row_groups(monkeypatch)

    records = list(iter_parquet([str(tmp_path / "t.parquet")], None))

    assert [r.data for r in records] == cells
    assert asked == [((0,), 3)]  # 2 MB a read by the metadata's 0.5 MB (and a few bytes) a row


def test_a_cell_over_the_item_limit_is_an_error_row_without_its_bytes(tmp_path, monkeypatch):
    monkeypatch.setattr(parquet, "too_large", lambda size: f"file too large ({size} bytes)" if size > 1000 else None)
    write_groups(tmp_path / "t.parquet", [[bytes(2000), image_bytes(noise_image(size=(8, 8)))]])

    big, small = iter_parquet([str(tmp_path / "t.parquet")], None)

    assert big.error == "file too large (2000 bytes)" and big.data is None
    assert small.error is None and small.data


WRITERS = [
    dict(),
    dict(compression="zstd"),
    dict(compression="snappy", data_page_version="2.0"),
    dict(use_dictionary=False, write_statistics=False),
    dict(compression="gzip", write_page_index=True, data_page_size=1000),
    dict(row_group_size=7, compression="lz4"),
    dict(write_page_checksum=True),
]


def test_page_headers_give_exactly_the_sizes_an_honest_file_states(tmp_path):
    """The page-header walk (what Arrow allocates by) agrees with the metadata of files pyarrow writes,
    for every column kind and writer option (read_plan takes the larger of the two, so a file whose
    metadata states less than its pages hold is held to its pages)."""
    import numpy as np

    from audit.sources.parquet import _page_sizes

    rng = np.random.default_rng(0)
    table = pa.table(
        {
            "image": [rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in rng.integers(10, 30000, 50)],
            "id": [f"k{i}" for i in range(50)],
            "n": list(range(50)),
            "f": rng.random(50),
            "s": pa.array([{"bytes": b"x" * i, "path": f"p{i}"} for i in range(50)]),
            "l": pa.array([[i, None, 3] if i % 3 else None for i in range(50)]),
            "b": [i % 2 == 0 for i in range(50)],
        }
    )
    for i, options in enumerate(WRITERS):
        path = tmp_path / f"{i}.parquet"
        pq.write_table(table, path, **options)
        metadata = pq.ParquetFile(path).metadata
        for group in range(metadata.num_row_groups):
            for j in range(metadata.num_columns):
                chunk = metadata.row_group(group).column(j)
                assert _page_sizes(str(path), [chunk]) == (
                    chunk.total_uncompressed_size,
                    chunk.total_compressed_size,
                ), options


def test_a_broken_page_header_is_an_error_row_naming_the_row_group(tmp_path):
    write_groups(tmp_path / "t.parquet", [[image_bytes(noise_image())] * 2, [b"x" * 100] * 2])
    chunk = pq.ParquetFile(tmp_path / "t.parquet").metadata.row_group(1).column(0)
    data = bytearray((tmp_path / "t.parquet").read_bytes())
    start = chunk.dictionary_page_offset if chunk.has_dictionary_page else chunk.data_page_offset
    data[start] = 0x0E  # a field of a Thrift type that does not exist
    (tmp_path / "t.parquet").write_bytes(bytes(data))

    records = list(iter_parquet([str(tmp_path / "t.parquet")], None))

    assert [r.id for r in records] == ["t.parquet/0", "t.parquet/1", "t.parquet/row group 1"]
    assert records[2].error.startswith("unreadable parquet row group 1: page headers:")
