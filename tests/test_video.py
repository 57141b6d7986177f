"""Video writers (numpy only)."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from vidm_rt.video import (
    first_frames_for,
    output_kind,
    png_bytes,
    read_image,
    read_images,
    to_uint8,
    write_video,
)


def decode_png(data: bytes) -> np.ndarray:
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat, size = 8, b"", None
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos:pos + 4])
        kind, body = data[pos + 4:pos + 8], data[pos + 8:pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length:pos + 12 + length])
        assert crc == zlib.crc32(kind + body) & 0xFFFFFFFF
        if kind == b"IHDR":
            size = struct.unpack(">II", body[:8])
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    w, h = size
    rows = np.frombuffer(zlib.decompress(idat), np.uint8).reshape(h, 1 + 3 * w)
    assert np.all(rows[:, 0] == 0)
    return rows[:, 1:].reshape(h, w, 3)


def test_png_round_trip() -> None:
    img = np.random.default_rng(0).integers(0, 256, (5, 7, 3), dtype=np.uint8)
    np.testing.assert_array_equal(decode_png(png_bytes(img)), img)


def test_to_uint8_maps_range() -> None:
    out = to_uint8(np.array([-1.0, 0.0, 1.0, 2.0]).reshape(1, 4, 1).repeat(3, 0))
    assert out.shape == (4, 1, 3)
    assert out[:, 0, 0].tolist() == [0, 128, 255, 255]


def test_write_formats(tmp_path) -> None:
    video = np.random.default_rng(1).uniform(-1, 1, (2, 3, 3, 8, 8)).astype(np.float32)
    [npy] = write_video(tmp_path / "v.npy", video)
    np.testing.assert_array_equal(np.load(npy), video)
    dirs = write_video(tmp_path / "frames/", video)
    assert [d.name for d in dirs] == ["frames_v0", "frames_v1"]
    frame = decode_png((dirs[1] / "frame00002.png").read_bytes())
    np.testing.assert_array_equal(frame, to_uint8(video[1, 2]))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["frames_v0", "frames_v1", "v.npy"]


def test_bad_outputs_and_images(tmp_path) -> None:
    with pytest.raises(ValueError, match="unknown output format"):
        output_kind(tmp_path / "v.avi")
    with pytest.raises(ValueError, match="expected"):
        write_video(tmp_path / "v.npy", np.zeros((3, 8, 8)))
    np.save(tmp_path / "img.npy", np.zeros((3, 16, 16), np.float32))
    with pytest.raises(ValueError, match=r"needs \(3, 32, 32\)"):
        read_image(tmp_path / "img.npy", 32)
    assert read_image(tmp_path / "img.npy", 16).shape == (3, 16, 16)
    with pytest.raises(ValueError, match="no such image"):
        read_image(tmp_path / "nope.png", 32)


def test_read_images_from_a_folder_a_stack_or_one_image(tmp_path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (3, 16, 16, 3), dtype=np.uint8)
    folder = tmp_path / "firsts"
    folder.mkdir()
    for i, name in enumerate(["b.png", "a.png", "c.png"]):
        Image.fromarray(pixels[i]).save(folder / name)
    (folder / "notes.txt").write_text("not an image")
    images = read_images(folder, 16)
    assert images.shape == (3, 3, 16, 16) and images.dtype == np.float32
    # name order: a.png (pixels[1]) first
    np.testing.assert_array_equal(to_uint8(images), pixels[[1, 0, 2]])
    stack = rng.uniform(-1, 1, (5, 3, 16, 16)).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack)
    np.testing.assert_array_equal(read_images(tmp_path / "stack.npy", 16), stack)
    assert read_images(folder / "a.png", 16).shape == (1, 3, 16, 16)
    # video v starts from image v mod N
    np.testing.assert_array_equal(first_frames_for(stack, 4, 3), stack[[4, 0, 1]])
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ValueError, match="no images in this folder"):
        read_images(empty, 16)
    with pytest.raises(ValueError, match=r"needs \(N, 3, 32, 32\)"):
        read_images(tmp_path / "stack.npy", 32)
    with pytest.raises(ValueError, match="no such image"):
        read_images(tmp_path / "nope.png", 16)
