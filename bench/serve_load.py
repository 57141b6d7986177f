"""Load on `vidm-rt serve`: time to first frame and total frames/s as clients are added.

    python bench/serve_load.py --json bench/results/DATE-serve-load.json \
        [--clients 1,2,4,8] [--batches 1,4] [--frames 8] [--rounds 2] [--threads 1]

For each batch (slots) the bundled demo model is exported once into the cache (as `vidm-rt
serve` does without --engine) and served on 127.0.0.1 on free ports. For each number of clients
N, `rounds` times: N clients start together (a barrier), each streams one video of `frames`
frames with its own seed. Time to first frame (TTFF) is from a client's request to its frame 0;
frames/s is every client's frames over the round's wall time (first request to last frame).
p50/p99 are over every client of every round. Prints a table; --json writes the rows.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from vidm_rt.cli.common import default_engine
from vidm_rt.serve.client import request_video
from vidm_rt.serve.launch import Server


def one_round(url: str, clients: int, frames: int, seed0: int) -> tuple[list[float], float]:
    """(TTFF of each client, wall seconds) of `clients` concurrent videos."""
    barrier = threading.Barrier(clients + 1)
    ttff: list[float] = []
    errors: list[Exception] = []

    def client(c: int) -> None:
        first: list[float] = []
        barrier.wait()
        start = time.perf_counter()
        try:
            request_video(url, seed0 + c, frames,
                          on_frame=lambda i, _f: first.append(time.perf_counter() - start)
                          if i == 0 else None)
            ttff.append(first[0])
        except Exception as e:  # re-raised in the main thread
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    barrier.wait()
    start = time.perf_counter()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    if errors:
        raise errors[0]
    return ttff, wall


def measure(batch: int, clients: list[int], frames: int, rounds: int,
            threads: int) -> list[dict[str, float]]:
    engine = default_engine(batch, print)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        server = Server(engine, Path(tmp) / "serve.log",
                        ("--threads", str(threads), "--max-frames", str(frames))).start()
        try:
            request_video(server.url, 0, frames)  # warm-up: first runs allocate
            for n in clients:
                ttffs, fps = [], []
                for r in range(rounds):
                    ttff, wall = one_round(server.url, n, frames, seed0=1000 * r)
                    ttffs += ttff
                    fps.append(n * frames / wall)
                rows.append({"slots": batch, "clients": n, "frames": frames,
                             "ttff_p50_s": float(np.percentile(ttffs, 50)),
                             "ttff_p99_s": float(np.percentile(ttffs, 99)),
                             "frames_per_s": float(np.mean(fps))})
                print(format_row(rows[-1]), flush=True)
        finally:
            stopped = server.stop()
            if stopped.returncode != 0:
                print(f"server exit status {stopped.returncode}: {server.log.read_text()[-2000:]}")
    return rows


HEADER = "slots  clients  frames  TTFF p50 (s)  TTFF p99 (s)  frames/s (total)"


def format_row(row: dict[str, float]) -> str:
    return (f"{row['slots']:>5}  {row['clients']:>7}  {row['frames']:>6}  "
            f"{row['ttff_p50_s']:>12.3f}  {row['ttff_p99_s']:>12.3f}  {row['frames_per_s']:>16.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", default="1,2,4,8")
    parser.add_argument("--batches", default="1,4")
    parser.add_argument("--frames", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1, help="CPU threads of the server")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    clients = [int(c) for c in args.clients.split(",")]
    print(HEADER)
    rows = [row for b in args.batches.split(",")
            for row in measure(int(b), clients, args.frames, args.rounds, args.threads)]
    if args.json is not None:
        from vidm_rt.atomic import write_text

        write_text(args.json, json.dumps({"frames": args.frames, "rounds": args.rounds,
                                          "threads": args.threads, "rows": rows}, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
