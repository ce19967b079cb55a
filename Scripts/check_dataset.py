#!/usr/bin/env python3
"""Load a feedbackd dataset with DuckDB and print a one-line JSON summary.

    python3 Scripts/check_dataset.py DATASET_DIR [--format jsonl|jsonl.gz|csv] [--labels clicked,purchased]

The dataset is Hive-partitioned (DESIGN.md section 5):
    DATASET_DIR/date=YYYY-MM-DD/hour=HH/part-NNNNNN.jsonl[.gz|.csv]
Files and directories whose names start with "." or "_" (in-progress segments, _SUCCESS,
_schema.json) are ignored, as Spark, Trino and DuckDB users expect.

Output (stdout), e.g.:
    {"rows": 3, "sums": {"clicked": 2}, "partitions": 2, "columns": ["key", ...],
     "partition_keys": ["date", "hour"], "files": 2}
"columns" are the columns of the rows themselves; the Hive keys are listed separately.
Exit status: 0 on success, 1 when the dataset cannot be read (message on stderr), 2 on usage errors.

Requires DuckDB (pip install duckdb).
"""

import argparse
import json
import os
import sys

FORMATS = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "csv": ".csv"}


class DatasetError(Exception):
    pass


def data_files(root, fmt):
    """Visible data files under root, as (path, partition) pairs, sorted."""
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith((".", "_")))
        for name in sorted(filenames):
            if name.startswith((".", "_")):
                continue
            path = os.path.join(dirpath, name)
            kind = next((f for f, ext in FORMATS.items() if name.endswith(ext)
                         and not (f == "jsonl" and name.endswith(".jsonl.gz"))), None)
            if kind is None or (fmt is not None and kind != fmt):
                continue
            rel = os.path.relpath(dirpath, root)
            parts = [] if rel == "." else rel.split(os.sep)
            if not parts or not all("=" in p for p in parts):
                raise DatasetError(f"{path}: not inside a key=value (Hive) partition directory")
            found.append((path, kind, tuple(parts)))
    return found


def check(root, fmt=None, labels=()):
    try:
        import duckdb
    except ImportError as e:
        raise DatasetError(f"DuckDB is not installed ({e}); run: pip install duckdb")
    if not os.path.isdir(root):
        raise DatasetError(f"{root}: no such dataset directory")
    files = data_files(root, fmt)
    if not files:
        wanted = FORMATS[fmt] if fmt else "/".join(FORMATS.values())
        raise DatasetError(f"{root}: no visible data files (*{wanted}) in date=/hour= partitions")
    kinds = sorted({k for _, k, _ in files})
    if len(kinds) > 1:
        raise DatasetError(f"{root}: mixed file formats {kinds}; pick one with --format")
    kind = kinds[0]
    paths = [p for p, _, _ in files]
    partition_keys = [p.split("=", 1)[0] for p in files[0][2]]

    con = duckdb.connect()
    try:
        if kind == "csv":
            rel = con.read_csv(paths, header=True, hive_partitioning=True, union_by_name=True)
        else:
            rel = con.read_json(paths, format="newline_delimited", hive_partitioning=True,
                                union_by_name=True)
        con.register("dataset", rel)
        all_columns = [c for c in rel.columns]
        types = dict(zip(rel.columns, [str(t) for t in rel.types]))
        columns = [c for c in all_columns if c not in partition_keys]
        missing = [l for l in labels if l not in columns]
        if missing:
            raise DatasetError(f"{root}: label column(s) {missing} not in dataset columns {columns}")
        selects = ["count(*)"]
        for label in labels:
            q = '"' + label.replace('"', '""') + '"'
            if types[label] == "BOOLEAN":
                selects.append(f"sum(CAST({q} AS INTEGER))")
            else:
                selects.append(f"sum({q})")
        key_cols = ", ".join('"' + k + '"' for k in partition_keys)
        result = con.execute(f"SELECT {', '.join(selects)} FROM dataset").fetchone()
        partitions = con.execute(
            f"SELECT count(*) FROM (SELECT DISTINCT {key_cols} FROM dataset)").fetchone()[0]
    except duckdb.Error as e:
        raise DatasetError(f"{root}: DuckDB cannot read the dataset: {e}".strip())
    finally:
        con.close()

    sums = {}
    for label, value in zip(labels, result[1:]):
        if value is None:
            value = 0
        elif not isinstance(value, int):
            value = float(value)
            if value.is_integer() and types[label] in ("BIGINT", "INTEGER", "HUGEINT"):
                value = int(value)
        sums[label] = value
    return {
        "rows": int(result[0]),
        "sums": sums,
        "partitions": int(partitions),
        "columns": columns,
        "partition_keys": partition_keys,
        "files": len(paths),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("dataset_dir")
    parser.add_argument("--format", choices=sorted(FORMATS), default=None,
                        help="file format to read (default: whatever the partitions hold)")
    parser.add_argument("--labels", default="",
                        help="comma-separated label columns to sum, e.g. clicked,purchased")
    args = parser.parse_args(argv)
    labels = [l.strip() for l in args.labels.split(",") if l.strip()]
    try:
        summary = check(args.dataset_dir, args.format, labels)
    except DatasetError as e:
        print(f"check_dataset: error: {e}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
