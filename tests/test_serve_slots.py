"""The slot scheduler of `vidm-rt serve` (continuous batching) on a stand-in generator whose
frame is a function of each row's noise address and conditioning, so that any mix-up of rows,
frames or seeds shows; no Triton, no export."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from vidm_rt.serve.slots import SHUTDOWN_MESSAGE, SlotScheduler, VideoRequest

SHAPE = (3, 2, 2)


class FakeGenerator:
    """Row b of a frame = seed + 1000 * frame + 10**6 * video (a request is video 0 of its
    seed, so a row addressed as another video is off by millions); a motion frame also adds
    x_prev and the first frame, so that the right row's frames must be fed back. `gate` (when
    set) holds each frame until the test releases it."""

    def __init__(self, batch: int, fail_at: int | None = None) -> None:
        self.batch, self.image_shape, self.has_content = batch, SHAPE, True
        self.buffers: dict[str, np.ndarray] = {}
        self.backend = self
        self.runs: list[tuple[str, list[tuple[int, int, int]]]] = []
        self.fail_at = fail_at
        self.gate: threading.Semaphore | None = None

    def make_current(self) -> None:
        """The scheduler's worker calls it (CUDA's device is per thread); nothing to do here."""

    def write(self, name: str, value: np.ndarray) -> None:
        self.buffers[name] = np.array(value)

    def frame_rows(self, graph: str, rows: list[tuple[int, int, int]]) -> np.ndarray:
        if self.gate is not None:
            self.gate.acquire()
        self.runs.append((graph, list(rows)))
        if self.fail_at is not None and len(self.runs) == self.fail_at:
            raise RuntimeError("device lost")
        out = np.zeros((self.batch, *SHAPE), np.float32)
        for b, (seed, video, frame) in enumerate(rows):
            out[b] = seed + 1000 * frame + 10**6 * video
            if graph == "motion":
                out[b] += self.buffers["x_prev"][b] + self.buffers["x_first"][b, 0, 0, 0]
        return out


def expected(seed: int, frames: int, first: float | None = None) -> list[float]:
    """The stand-in's frames of one request run alone (the value of every pixel)."""
    values = [float(seed) if first is None else first]
    for f in range(1, frames):
        values.append(seed + 1000 * f + values[-1] + values[0])
    return values


class Collector:
    def __init__(self) -> None:
        self.frames: list[tuple[int, float]] = []
        self.end: list[str | None] = []
        self.done = threading.Event()
        self.arrived = threading.Semaphore(0)  # one release per frame

    def request(self, seed: int, frames: int, first: float | None = None) -> VideoRequest:
        given = None if first is None else np.full(SHAPE, first, np.float32)
        return VideoRequest(seed, frames, on_frame=self.frame, on_end=self.finish,
                            first_frame=given)

    def frame(self, index: int, frame: np.ndarray) -> None:
        assert np.all(frame == frame.flat[0])
        self.frames.append((index, float(frame.flat[0])))
        self.arrived.release()

    def finish(self, error: str | None) -> None:
        self.end.append(error)
        self.done.set()


def test_requests_in_any_slot_get_their_own_video():
    gen = FakeGenerator(batch=3)
    scheduler = SlotScheduler(gen)
    jobs = [(5, 4, None), (7, 2, None), (9, 3, 0.5), (11, 5, None)]
    collectors = [Collector() for _ in jobs]
    for c, (seed, frames, first) in zip(collectors, jobs, strict=True):
        scheduler.submit(c.request(seed, frames, first))
    for c in collectors:
        assert c.done.wait(timeout=30)
    scheduler.close()
    for c, (seed, frames, first) in zip(collectors, jobs, strict=True):
        assert c.end == [None]
        assert [i for i, _ in c.frames] == list(range(frames))
        assert [v for _, v in c.frames] == expected(seed, frames, first)
    # The fourth request waited for a free slot, then joined the running batch.
    assert scheduler.stats.requests == 4 and scheduler.stats.finished == 4
    assert scheduler.stats.joined_running == 1
    assert scheduler.stats.most_together == 3
    # A given first frame costs no run; content runs only for the rows that need it.
    assert all(graph in ("content", "motion") for graph, _ in gen.runs)
    assert sum(graph == "content" for graph, _ in gen.runs) == 2


def test_a_cancelled_request_frees_its_slot_at_the_next_frame_boundary():
    gen = FakeGenerator(batch=1)
    gen.gate = threading.Semaphore(0)
    scheduler = SlotScheduler(gen)
    first, second = Collector(), Collector()
    long = first.request(1, 100)
    scheduler.submit(long)
    scheduler.submit(second.request(2, 2))
    gen.gate.release(2)  # two frames of the long video
    assert first.arrived.acquire(timeout=30) and first.arrived.acquire(timeout=30)
    scheduler.cancel(long)
    gen.gate.release(10)
    assert first.done.wait(timeout=30) and second.done.wait(timeout=30)
    scheduler.close()
    assert first.end == ["cancelled"] and len(first.frames) <= 3
    assert second.end == [None] and [v for _, v in second.frames] == expected(2, 2)
    assert scheduler.stats.cancelled == 1 and scheduler.stats.busy == 0


def test_a_failed_frame_ends_its_requests_and_the_next_ones_still_run():
    gen = FakeGenerator(batch=2, fail_at=2)
    scheduler = SlotScheduler(gen)
    a, b = Collector(), Collector()
    scheduler.submit(a.request(1, 3))
    assert a.done.wait(timeout=30)
    scheduler.submit(b.request(4, 2))
    assert b.done.wait(timeout=30)
    scheduler.close()
    assert a.end == ["generation failed: device lost"]
    assert b.end == [None] and [v for _, v in b.frames] == expected(4, 2)


def test_close_ends_running_and_waiting_requests():
    gen = FakeGenerator(batch=1)
    gen.gate = threading.Semaphore(1)
    scheduler = SlotScheduler(gen)
    running, waiting = Collector(), Collector()
    scheduler.submit(running.request(1, 10))
    scheduler.submit(waiting.request(2, 10))
    assert running.arrived.acquire(timeout=30)
    closer = threading.Thread(target=scheduler.close)
    closer.start()
    gen.gate.release(5)
    closer.join(timeout=30)
    assert running.end == [SHUTDOWN_MESSAGE] and waiting.end == [SHUTDOWN_MESSAGE]
    with pytest.raises(RuntimeError, match="shutting down"):
        scheduler.submit(Collector().request(3, 1))
