"""`vidm-rt serve` against a real Triton server on 127.0.0.1: streamed videos equal `generate`'s,
continuous batching, bad requests, disconnects, SIGTERM. One server per export for the module
(Triton takes seconds to start); the bundled demo model exported with 4 steps keeps it short."""

from __future__ import annotations

import ipaddress
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

pytest.importorskip("pytriton", reason="needs the serve extra: pip install 'vidm-rt[serve]'")
pytest.importorskip("tritonclient.grpc", reason="needs the serve extra")
pytest.importorskip("torch", reason="exporting the bundled model needs torch")

from vidm_rt.cli import main  # noqa: E402
from vidm_rt.eval.shapes import psnr_per_frame  # noqa: E402
from vidm_rt.runtime import VideoGenerator  # noqa: E402
from vidm_rt.serve.client import request_video, server_stats  # noqa: E402
from vidm_rt.serve.launch import Server, http_ok  # noqa: E402

pytestmark = [pytest.mark.serve, pytest.mark.slow]
# --max-frames per export: batch 4 allows a stream long enough to still run when SIGTERM comes.
MAX_FRAMES = {1: 8, 4: 24}


@pytest.fixture(scope="module")
def exports(tmp_path_factory) -> dict[int, Path]:
    from vidm_rt.cli.common import BUNDLED_MODEL
    from vidm_rt.export import ExportOptions, export_checkpoint

    root = tmp_path_factory.mktemp("serve-export")
    # A deterministic 4-step sampler: clean frames, on which the GIF and MP4 bounds below were
    # measured (4 ancestral steps leave grain that a GIF palette cannot hold).
    return {b: export_checkpoint(BUNDLED_MODEL, ExportOptions(
        name=f"demo-b{b}", out_dir=root, batch=b, sampler="dpmpp2m", steps=4,
        frames=4))[0] for b in (1, 4)}


@pytest.fixture(scope="module")
def servers(exports, tmp_path_factory):
    logs = tmp_path_factory.mktemp("serve-logs")
    running = {b: Server(exports[b], logs / f"b{b}.log",
                         ("--max-frames", str(MAX_FRAMES[b]), "--threads", "1")).start()
               for b in (1, 4)}
    yield running
    for server in running.values():
        server.stop()


def psnr(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """PSNR of each frame of two (F, C, H, W) videos, dB."""
    return psnr_per_frame(a[None], b[None])


def reference(engine: Path, seed: int, frames: int) -> np.ndarray:
    """Video 0 of `seed` as `vidm-rt generate` makes it on this export (F, C, H, W)."""
    with VideoGenerator(engine, threads=1) as gen:
        return np.stack([f[0] for f in gen.generate(frames, seed=seed)])


def test_four_streaming_clients_get_generates_videos_bit_for_bit(servers, exports, tmp_path):
    server, got, errors = servers[1], {}, []

    def client(c: int) -> None:
        try:
            for v in range(2):
                seed = 100 + 2 * c + v
                seen: list[int] = []
                video = request_video(server.url, seed, 4,
                                      on_frame=lambda i, _f, seen=seen: seen.append(i))
                got[seed] = (seen, video)
        except Exception as e:  # reported below: a thread's exception would be lost
            errors.append(e)

    threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert sorted(got) == list(range(100, 108))
    # The `generate` command itself for one seed, as float arrays (.npy).
    out = tmp_path / "generate.npy"
    result = CliRunner().invoke(main, ["generate", "--engine", str(exports[1]), "--seed", "100",
                                       "--frames", "4", "--threads", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.array_equal(np.load(out), got[100][1])
    for seed, (seen, video) in got.items():
        assert seen == [0, 1, 2, 3]  # none lost, repeated or out of order
        assert np.array_equal(video, reference(exports[1], seed, 4)), seed


def test_requests_arriving_later_join_the_running_batch(servers, exports):
    server = servers[4]
    before = server_stats(server.url)
    first_frame_seen = threading.Event()
    results: dict[int, np.ndarray] = {}
    long = threading.Thread(target=lambda: results.__setitem__(7, request_video(
        server.url, 7, 8, on_frame=lambda i, _f: first_frame_seen.set())))
    long.start()
    assert first_frame_seen.wait(timeout=300)
    late = [threading.Thread(target=lambda s=s: results.__setitem__(s, request_video(
        server.url, s, 4))) for s in (8, 9)]
    for t in late:
        t.start()
    for t in [long, *late]:
        t.join()
    stats = server_stats(server.url)
    assert stats["slots"] == 4
    assert stats["joined_running"] - before["joined_running"] >= 1
    assert stats["most_together"] >= 2
    assert stats["shared"] > before["shared"]
    assert stats["busy"] == 0
    for seed, video in results.items():
        want = reference(exports[4], seed, len(video))
        assert psnr(video, want).min() >= 60, seed


@pytest.mark.parametrize("bad, message", [
    (dict(frames=0), "frames must be in [1, 24]"),
    (dict(frames=MAX_FRAMES[4] + 1), "frames must be in [1, 24]"),
    (dict(precision="int8"), "precision 'int8' is not loaded"),
    (dict(first_frame=np.zeros((3, 8, 8), np.float32)), "needs (3, 32, 32)"),
])
def test_a_bad_request_gets_an_error_and_others_keep_streaming(servers, exports, bad, message):
    server = servers[4]
    other: dict[str, np.ndarray] = {}
    streaming = threading.Event()
    thread = threading.Thread(target=lambda: other.__setitem__("video", request_video(
        server.url, 11, 6, on_frame=lambda i, _f: streaming.set())))
    thread.start()
    assert streaming.wait(timeout=300)
    kwargs = dict(seed=1, frames=3) | bad
    with pytest.raises(ValueError, match="^server: ") as info:
        request_video(server.url, **kwargs)
    assert message in str(info.value)
    assert "Traceback" not in str(info.value)
    thread.join()
    assert psnr(other["video"], reference(exports[4], 11, 6)).min() >= 60


def test_a_malformed_tensor_is_refused(servers):
    import tritonclient.grpc as grpcclient

    seed = grpcclient.InferInput("seed", [1], "FP32")
    seed.set_data_from_numpy(np.array([1.5], np.float32))
    frames = grpcclient.InferInput("frames", [1], "INT32")
    frames.set_data_from_numpy(np.array([2], np.int32))
    client = grpcclient.InferenceServerClient(servers[4].url.removeprefix("grpc://"))
    answers: list = []
    done = threading.Event()
    client.start_stream(callback=lambda result, error: (answers.append(error), done.set()))
    client.async_stream_infer("vidm", [seed, frames], enable_empty_final_response=True)
    assert done.wait(timeout=60)
    client.stop_stream()
    client.close()
    assert "'seed' data-type is 'FP32', but model 'vidm' expects 'UINT64'" in str(answers[0])


def test_a_client_that_disconnects_frees_its_slot(servers, exports):
    import tritonclient.grpc as grpcclient

    server = servers[4]
    inputs = [grpcclient.InferInput("seed", [1], "UINT64"),
              grpcclient.InferInput("frames", [1], "INT32")]
    inputs[0].set_data_from_numpy(np.array([21], np.uint64))
    inputs[1].set_data_from_numpy(np.array([8], np.int32))
    client = grpcclient.InferenceServerClient(server.url.removeprefix("grpc://"))
    first = threading.Event()
    client.start_stream(callback=lambda result, error: first.set())
    client.async_stream_infer("vidm", inputs)
    assert first.wait(timeout=300)
    client.stop_stream(cancel_requests=True)  # gone after one frame
    client.close()
    # Another stream is not disturbed.
    video = request_video(server.url, 22, 4)
    assert psnr(video, reference(exports[4], 22, 4)).min() >= 60
    # The abandoned request's slot is free again (at the latest when its frames run out).
    deadline = time.monotonic() + 300
    while server_stats(server.url)["busy"] and time.monotonic() < deadline:
        time.sleep(0.2)
    assert server_stats(server.url)["busy"] == 0


def _listening_addresses(port: int) -> set[str]:
    """The local addresses of the sockets listening on TCP `port`, from /proc/net/tcp{,6}."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == "0A" and int(hex_port, 16) == port:  # 0A: LISTEN
                    raw = bytes.fromhex(address)
                    # The kernel prints each 32-bit word of the address in host (little) order.
                    addr = ipaddress.ip_address(b"".join(raw[i:i + 4][::-1]
                                                         for i in range(0, len(raw), 4)))
                    # gRPC listens on an IPv6 socket for an IPv4 host (::ffff:127.0.0.1).
                    mapped = getattr(addr, "ipv4_mapped", None)
                    found.add(str(mapped or addr))
    return found


def test_health_and_metrics_on_the_host_only(servers):
    server = servers[1]
    assert http_ok(f"{server.http}/v2/health/ready")
    import urllib.request

    with urllib.request.urlopen(server.metrics, timeout=10) as r:
        text = r.read().decode()
    assert 'nv_inference_request_success{model="vidm"' in text
    if not Path("/proc/net/tcp").exists():
        pytest.skip("listening addresses are read from Linux's /proc/net/tcp")
    # grpc, http and metrics each listen on the loopback address and nowhere else
    # (not 0.0.0.0 or ::, which would expose them on every interface).
    for port in server.ports:
        assert _listening_addresses(port) == {"127.0.0.1"}, (port, _listening_addresses(port))


def test_request_writes_every_output_format(servers, exports, tmp_path):
    server, want = servers[1], reference(exports[1], 5, 3)
    for name in ("v.npy", "v.gif", "v.mp4", "frames/"):
        out = tmp_path / name
        result = CliRunner().invoke(main, ["request", "--url", server.url, "--frames", "3",
                                           "--seed", "5", "--out", str(out), "--quiet"])
        assert result.exit_code == 0, result.output
        assert out.exists()
    assert np.array_equal(np.load(tmp_path / "v.npy"), want)
    assert len(list((tmp_path / "frames").iterdir())) == 3
    # The encoded outputs decode to the same video: PNG frames exactly, GIF (palette) and MP4
    # (x264) within bounds below the measured PSNR (GIF 52.8 dB, MP4 33.6 dB at the worst frame;
    # a wrong or reordered frame scores about 8).
    import imageio.v2 as imageio
    from PIL import Image, ImageSequence

    from vidm_rt.video import read_images, to_uint8

    want8 = to_uint8(want)
    with Image.open(tmp_path / "v.gif") as gif:
        gif_frames = np.stack([np.asarray(f.convert("RGB")) for f in ImageSequence.Iterator(gif)])
    mp4_frames = np.stack(imageio.mimread(tmp_path / "v.mp4"))
    png_frames = to_uint8(read_images(tmp_path / "frames", want.shape[-1]))
    np.testing.assert_array_equal(png_frames, want8)
    for decoded, floor in ((gif_frames, 40), (mp4_frames, 25)):
        assert decoded.shape == want8.shape
        err = np.mean((decoded.astype(float) - want8) ** 2, axis=(1, 2, 3))
        assert np.all(10 * np.log10(255.0**2 / np.maximum(err, 1e-10)) >= floor), err
    bad = CliRunner().invoke(main, ["request", "--url", server.url, "--frames", "99",
                                    "--out", str(tmp_path / "x.npy")])
    assert bad.exit_code == 2
    assert "frames must be in [1, 8]" in bad.output and "Traceback" not in bad.output
    assert not (tmp_path / "x.npy").exists()


def test_sigterm_stops_every_process_and_frees_the_ports(servers):
    # A stream still running when SIGTERM comes ends with an error saying so.
    streaming, ended = threading.Event(), []

    def stream() -> None:
        try:
            request_video(servers[4].url, 31, MAX_FRAMES[4], on_frame=lambda i, _f: streaming.set())
            ended.append("finished")
        except ValueError as e:
            ended.append(str(e))

    thread = threading.Thread(target=stream)
    thread.start()
    assert streaming.wait(timeout=300)
    stopped_b4 = servers[4].stop()
    thread.join()
    assert ended == ["server: the server is shutting down: send the request again to another "
                     "instance"]
    assert stopped_b4.returncode == 0
    for server in servers.values():
        stopped = server.stop()
        assert stopped.returncode == 0, server.log.read_text()[-2000:]
        assert stopped.orphans == []
        assert stopped.busy_ports == []


def test_the_client_names_a_missing_server_and_a_bad_url():
    from vidm_rt.serve.client import grpc_address
    from vidm_rt.serve.launch import free_ports

    assert grpc_address("grpc://10.0.0.5:8001") == "10.0.0.5:8001"
    assert grpc_address("localhost:9") == "localhost:9"
    with pytest.raises(ValueError, match="give grpc://HOST:PORT"):
        grpc_address("http://localhost:8000")
    (port,) = free_ports(1)
    with pytest.raises(ValueError, match=f"no vidm-rt server at grpc://127.0.0.1:{port}"):
        request_video(f"grpc://127.0.0.1:{port}", 0, 2)
