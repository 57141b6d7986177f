"""Continuous batching: the rows of one export's batch are slots that many video requests share.

A worker thread runs the batch one frame at a time. At each frame boundary it frees the slots of
finished or cancelled requests, gives free slots to waiting requests, then advances every busy
slot by one frame: new requests make their content frame (or hand back their given first
frame), the others their next motion frame. Content and motion are different graphs, so a
boundary with both runs the batch twice; a row that is not part of a run computes a throwaway
frame.

Each row draws its own request's noise (`VideoGenerator.frame_rows`: one (seed, video, frame)
address per row), and a request is always video 0 of its seed, so its frames are the same
whichever slot it lands in and whenever it joins: equal to `vidm-rt generate --seed S` up to
the float rounding of the other rows' company (bit-equal with one slot).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from ..runtime import VideoGenerator

SHUTDOWN_MESSAGE = "the server is shutting down: send the request again to another instance"


@dataclass
class VideoRequest:
    """One video: `on_frame(index, frame)` receives frames 0..frames-1 in order, then
    `on_end(error)` once (None when every frame was delivered). Both are called on the worker
    thread and must return quickly."""

    seed: int
    frames: int
    on_frame: Callable[[int, np.ndarray], None]
    on_end: Callable[[str | None], None]
    first_frame: np.ndarray | None = None
    cancelled: bool = False


@dataclass
class BatchStats:
    """What the worker did, for the stats model and the tests.

    requests: admitted into a slot; finished: delivered every frame; cancelled: freed early;
    boundaries: frame boundaries run; shared: boundaries at which two or more requests ran in
    one batch; joined_running: requests that took a slot while another request was past its
    first frame (they joined a running batch at a frame boundary); most_together: the most
    requests in one boundary.
    """

    requests: int = 0
    finished: int = 0
    cancelled: int = 0
    boundaries: int = 0
    shared: int = 0
    joined_running: int = 0
    most_together: int = 0
    busy: int = 0

    def as_dict(self) -> dict[str, int]:
        return dict(self.__dict__)


@dataclass
class _Slot:
    request: VideoRequest
    next_frame: int = 0
    first: np.ndarray | None = None
    prev: np.ndarray | None = None


@dataclass
class _Boundary:
    """The busy slots of one frame boundary, by what they make."""

    content: list[int] = field(default_factory=list)
    given: list[int] = field(default_factory=list)
    motion: list[int] = field(default_factory=list)


class SlotScheduler:
    """The slots of one generator (one export, one precision), run by a worker thread."""

    def __init__(self, generator: VideoGenerator, name: str = "slots") -> None:
        self.gen = generator
        self.stats = BatchStats()
        self._slots: list[_Slot | None] = [None] * generator.batch
        self._waiting: deque[VideoRequest] = deque()
        self._cond = threading.Condition()
        self._closed = False
        self._thread = threading.Thread(target=self._work, name=f"vidm-{name}", daemon=True)
        self._thread.start()

    @property
    def slots(self) -> int:
        return len(self._slots)

    def submit(self, request: VideoRequest) -> None:
        """Queue a request; it takes a slot at the next frame boundary with one free."""
        with self._cond:
            if self._closed:
                raise RuntimeError(SHUTDOWN_MESSAGE)
            self._waiting.append(request)
            self._cond.notify()

    def cancel(self, request: VideoRequest) -> None:
        """Stop a request: its slot is freed at the next frame boundary (no-op once it ended)."""
        with self._cond:
            request.cancelled = True
            self._cond.notify()

    def close(self) -> None:
        """Stop the worker after the current frame; every unfinished request ends with an
        error. Idempotent."""
        with self._cond:
            self._closed = True
            self._cond.notify()
        self._thread.join()

    def _work(self) -> None:
        while True:
            with self._cond:
                self._free_cancelled()
                self._admit()
                while not self._closed and not any(self._slots):
                    self._cond.wait()
                    self._free_cancelled()
                    self._admit()
                if self._closed:
                    break
                busy = [(b, s) for b, s in enumerate(self._slots) if s is not None]
            try:
                self._boundary(busy)
            except Exception as e:  # a failed run ends the requests in it, not the server
                self._end_all(busy, f"generation failed: {e}")
        with self._cond:
            busy = [(b, s) for b, s in enumerate(self._slots) if s is not None]
            waiting = [_Slot(r) for r in self._waiting]
            self._waiting.clear()
        self._end_all(busy + [(-1, s) for s in waiting], SHUTDOWN_MESSAGE)

    def _free_cancelled(self) -> None:
        for b, slot in enumerate(self._slots):
            if slot is not None and slot.request.cancelled:
                self._slots[b] = None
                self.stats.cancelled += 1
                slot.request.on_end("cancelled")
        kept = [r for r in self._waiting if not r.cancelled]
        for r in self._waiting:
            if r.cancelled:
                r.on_end("cancelled")
        self._waiting = deque(kept)

    def _admit(self) -> None:
        running = any(s is not None and s.next_frame > 0 for s in self._slots)
        for b in range(len(self._slots)):
            if self._slots[b] is None and self._waiting:
                self._slots[b] = _Slot(self._waiting.popleft())
                self.stats.requests += 1
                self.stats.joined_running += running
        self.stats.busy = sum(s is not None for s in self._slots)

    def _end_all(self, busy: list[tuple[int, _Slot]], message: str) -> None:
        """End the given requests with `message` (b < 0: a request still waiting), skipping
        any that already ended."""
        with self._cond:
            ending = [s for b, s in busy if b < 0 or self._slots[b] is s]
            for b, s in busy:
                if b >= 0 and self._slots[b] is s:
                    self._slots[b] = None
            self.stats.busy = sum(s is not None for s in self._slots)
        for slot in ending:
            slot.request.on_end(message)

    def _boundary(self, busy: list[tuple[int, _Slot]]) -> None:
        """Advance every busy slot by one frame."""
        # The worker thread is not the one that built the generator, and CUDA's current
        # device is per thread: without this a cuda:1 generator would launch on device 0.
        self.gen.make_current()
        stats = self.stats
        stats.boundaries += 1
        stats.shared += len(busy) >= 2
        stats.most_together = max(stats.most_together, len(busy))
        plan = _Boundary()
        for b, slot in busy:
            if slot.next_frame > 0:
                plan.motion.append(b)
            elif slot.request.first_frame is not None:
                plan.given.append(b)
            else:
                plan.content.append(b)
        slots = dict(busy)
        if plan.motion:
            x_first = np.zeros((self.gen.batch, *self.gen.image_shape), np.float32)
            x_prev = np.zeros_like(x_first)
            for b in plan.motion:
                x_first[b], x_prev[b] = slots[b].first, slots[b].prev
            self.gen.backend.write("x_first", x_first)
            self.gen.backend.write("x_prev", x_prev)
            out = self.gen.frame_rows("motion", self._rows(slots, plan.motion))
            for b in plan.motion:
                self._deliver(b, slots[b], np.array(out[b]))
        if plan.content:
            out = self.gen.frame_rows("content", self._rows(slots, plan.content))
            for b in plan.content:
                self._deliver(b, slots[b], np.array(out[b]))
        for b in plan.given:
            self._deliver(b, slots[b], np.asarray(slots[b].request.first_frame, np.float32))

    def _rows(self, slots: dict[int, _Slot], running: list[int]) -> list[tuple[int, int, int]]:
        """The noise address of every row: (seed, video 0, next frame) for the rows that run,
        a fixed address for the others (their output is thrown away)."""
        return [(slots[b].request.seed, 0, slots[b].next_frame) if b in running else (0, 0, 0)
                for b in range(self.gen.batch)]

    def _deliver(self, b: int, slot: _Slot, frame: np.ndarray) -> None:
        if slot.next_frame == 0:
            slot.first = frame
        slot.prev = frame
        slot.request.on_frame(slot.next_frame, frame)
        slot.next_frame += 1
        if slot.next_frame == slot.request.frames:
            with self._cond:
                self._slots[b] = None
                self.stats.finished += 1
                self.stats.busy = sum(s is not None for s in self._slots)
            slot.request.on_end(None)
