#!/usr/bin/env python3
"""Append lines to a log and rotate it the ways logrotate does, for feedbackd's live tests.

    rotating_writer.py INPUT DIR --every N --styles rename,copytruncate,compress,delaycompress
                       [--rate LINES_PER_S] [--split 0.1] [--seed 1] [--dated]

Writes INPUT's lines, in order, to DIR/app.log. After every N lines it rotates with the next
style (cycling): `rename` (app.log → app.log.1, new app.log), `copytruncate` (copy to
app.log.1, truncate app.log), `compress` (rename, then gzip app.log.1 in place, the .gz visible
while it is being written, then unlink the plain file), `delaycompress` (rename, and gzip the
previous app.log.2). Older files shift up (app.log.N → app.log.N+1). With --dated, rotated
files are named app.log-<14 digits>-<n> instead and never shift. About --split of the lines
are written in two writes with a short pause between them. Nothing is ever deleted, so every
line written stays on disk. Exits when INPUT is written.
"""

import argparse
import gzip
import os
import random
import re
import shutil
import time


def numbered(dirpath):
    found = []
    for name in os.listdir(dirpath):
        m = re.fullmatch(r"app\.log\.(\d+)(\.gz)?", name)
        if m:
            found.append((int(m.group(1)), name))
    return sorted(found, reverse=True)


def gzip_in_place(path):
    # Like gzip(1): the .gz appears and grows, then the plain file is unlinked.
    with open(path, "rb") as src, open(path + ".gz", "wb") as raw:
        with gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as dst:
            while True:
                chunk = src.read(16384)
                if not chunk:
                    break
                dst.write(chunk)
                raw.flush()
    os.unlink(path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("input")
    ap.add_argument("dir")
    ap.add_argument("--every", type=int, default=500)
    ap.add_argument("--styles", default="rename,copytruncate,compress,delaycompress")
    ap.add_argument("--rate", type=float, default=5000.0)
    ap.add_argument("--split", type=float, default=0.1)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--dated", action="store_true")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    styles = args.styles.split(",")
    live = os.path.join(args.dir, "app.log")
    os.makedirs(args.dir, exist_ok=True)
    out = open(live, "ab", buffering=0)
    rotations = 0
    start = time.monotonic()
    with open(args.input, "rb") as f:
        lines = f.read().split(b"\n")
    if lines and lines[-1] == b"":
        lines.pop()
    for i, line in enumerate(lines):
        data = line + b"\n"
        if rng.random() < args.split and len(data) > 2:
            cut = rng.randrange(1, len(data) - 1)
            out.write(data[:cut])
            time.sleep(0.002)
            out.write(data[cut:])
        else:
            out.write(data)
        # Keep to the rate.
        ahead = (i + 1) / args.rate - (time.monotonic() - start)
        if ahead > 0:
            time.sleep(ahead)
        if (i + 1) % args.every == 0 and i + 1 < len(lines):
            style = styles[rotations % len(styles)]
            rotations += 1
            if args.dated:
                target = os.path.join(args.dir, "app.log-%s-%d" % (time.strftime("%Y%m%d%H%M%S", time.gmtime()), rotations))
            else:
                for n, name in numbered(args.dir):
                    suffix = ".gz" if name.endswith(".gz") else ""
                    os.rename(os.path.join(args.dir, name), os.path.join(args.dir, "app.log.%d%s" % (n + 1, suffix)))
                target = os.path.join(args.dir, "app.log.1")
            if style == "copytruncate":
                shutil.copyfile(live, target)
                out.truncate(0)
                out.seek(0)
            else:
                out.close()
                os.rename(live, target)
                out = open(live, "ab", buffering=0)
            if style == "compress":
                gzip_in_place(target)
            elif style == "delaycompress" and not args.dated:
                older = os.path.join(args.dir, "app.log.2")
                if os.path.exists(older):
                    gzip_in_place(older)
    out.close()


if __name__ == "__main__":
    main()
