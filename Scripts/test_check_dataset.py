"""Tests for check_dataset.py on tiny hand-made datasets (python3 -m pytest Scripts/test_check_dataset.py)."""

import gzip
import json
import os
import subprocess
import sys

import pytest

SCRIPT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "check_dataset.py")

ROWS_09 = [
    {"key": "r-1", "predicted_at": "2026-11-30T09:00:00.000Z", "score": 0.9, "category": "shoes",
     "clicked": 1, "clicked_at": "2026-11-30T09:00:05.000Z", "purchased": 1, "revenue": 59.9},
    {"key": "r-2", "predicted_at": "2026-11-30T09:10:00.000Z", "score": 0.2, "category": "books",
     "clicked": 0, "clicked_at": None, "purchased": 0, "revenue": 0.0},
]
ROWS_10 = [
    {"key": "r-3", "predicted_at": "2026-11-30T10:01:00.000Z", "score": 0.7, "category": "toys",
     "clicked": 1, "clicked_at": "2026-11-30T10:02:00.000Z", "purchased": 1, "revenue": 20.1},
]


def run(*args):
    proc = subprocess.run([sys.executable, SCRIPT, *args], capture_output=True, text=True)
    return proc.returncode, proc.stdout, proc.stderr


def write_rows(path, rows, fmt):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if fmt == "csv":
        cols = list(rows[0])
        lines = [",".join(cols)]
        for r in rows:
            lines.append(",".join("" if r[c] is None else str(r[c]) for c in cols))
        data = ("\n".join(lines) + "\n").encode()
    else:
        data = "".join(json.dumps(r) + "\n" for r in rows).encode()
    if fmt == "jsonl.gz":
        data = gzip.compress(data)
    with open(path, "wb") as f:
        f.write(data)


def make_dataset(root, fmt):
    ext = {"jsonl": "jsonl", "jsonl.gz": "jsonl.gz", "csv": "csv"}[fmt]
    write_rows(os.path.join(root, "date=2026-11-30", "hour=09", f"part-000000.{ext}"), ROWS_09, fmt)
    write_rows(os.path.join(root, "date=2026-11-30", "hour=10", f"part-000001.{ext}"), ROWS_10, fmt)
    # Things a reader must ignore: an in-progress segment, markers and the schema file.
    with open(os.path.join(root, "date=2026-11-30", "hour=10", f".part-000002.{ext}.inprogress"), "wb") as f:
        f.write(b'{"key": "r-4", "clicked": 1, "truncat')
    open(os.path.join(root, "date=2026-11-30", "hour=09", "_SUCCESS"), "w").close()
    with open(os.path.join(root, "_schema.json"), "w") as f:
        f.write('{"columns": []}\n')
    os.makedirs(os.path.join(root, "_temporary", "date=2026-11-30", "hour=11"))
    write_rows(os.path.join(root, "_temporary", "date=2026-11-30", "hour=11", f"part-000009.{ext}"), ROWS_10, fmt)


@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv"])
def test_reads_two_partitions(tmp_path, fmt):
    root = str(tmp_path / "ds")
    make_dataset(root, fmt)
    code, out, err = run(root, "--format", fmt, "--labels", "clicked,purchased,revenue")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["rows"] == 3
    assert summary["partitions"] == 2
    assert summary["sums"]["clicked"] == 2
    assert summary["sums"]["purchased"] == 2
    assert summary["sums"]["revenue"] == pytest.approx(80.0)
    assert summary["columns"][:2] == ["key", "predicted_at"]
    assert "clicked" in summary["columns"] and "date" not in summary["columns"]
    assert summary["partition_keys"] == ["date", "hour"]


def test_format_is_detected(tmp_path):
    root = str(tmp_path / "ds")
    make_dataset(root, "jsonl")
    code, out, err = run(root, "--labels", "clicked")
    assert code == 0, err
    assert json.loads(out)["sums"] == {"clicked": 2}


def test_missing_directory_fails(tmp_path):
    code, out, err = run(str(tmp_path / "nope"))
    assert code != 0 and out == ""
    assert "no such dataset directory" in err


def test_empty_dataset_fails(tmp_path):
    root = tmp_path / "ds" / "date=2026-11-30" / "hour=09"
    root.mkdir(parents=True)
    (root / ".part-000000.jsonl.inprogress").write_text('{"key": "r-1"}\n')
    code, _, err = run(str(tmp_path / "ds"))
    assert code != 0
    assert "no visible data files" in err


def test_corrupt_file_fails(tmp_path):
    root = str(tmp_path / "ds")
    make_dataset(root, "jsonl")
    with open(os.path.join(root, "date=2026-11-30", "hour=10", "part-000003.jsonl"), "w") as f:
        f.write('{"key": "r-5", "clicked": 1\n')
    code, out, err = run(root, "--labels", "clicked")
    assert code != 0 and out == ""
    assert "cannot read" in err


def test_unknown_label_fails(tmp_path):
    root = str(tmp_path / "ds")
    make_dataset(root, "jsonl")
    code, _, err = run(root, "--labels", "bought")
    assert code != 0
    assert "bought" in err
