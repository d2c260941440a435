"""Test support for the external corpus sources: a fault-injecting loopback HTTP server, tiny
real mp4 files, and a fake CMU-MOSEAS tree written in the release's real formats.

Imported by test_download*.py / test_moseas*.py / test_folder*.py (pytest puts tests/ on
sys.path). The server binds 127.0.0.1 only; every fault is consumed once from a finite list and
stalls are bounded, so no test can hang on it.
"""

from __future__ import annotations

import csv
import hashlib
import http.server
import socket
import struct
import subprocess
import threading
import time
from pathlib import Path

import pytest

ATTRS = (
    "anger",
    "confident",
    "disgust",
    "dominant",
    "eloquent",
    "entertaining",
    "fear",
    "gender",
    "happiness",
    "humorous",
    "is_opinion",
    "narcissist",
    "nervous",
    "passionate",
    "persuasive",
    "relaxed",
    "reserved",
    "sadness",
    "sarcastic",
    "surprise",
)


class FaultServer:
    """Serves ``files`` (path -> bytes) with Range support; ``faults[path]`` is consumed one per GET.

    Faults: ``"500"``/``"503"``/``"429"`` (status), ``"timeout"`` (stall ``stall_s`` before
    answering), ``"reset"`` (TCP RST), ``"truncate"`` (full Content-Length, half the body, close),
    ``"norange"`` (ignore Range once), ``"corrupt"`` (right length, wrong bytes),
    ``"503-retry-after"`` (503 with ``Retry-After: 2``). Bodies carry a strong ETag and
    ``If-Range`` is honoured, so a file replaced mid-download is sent whole. Paths not in
    ``files`` are 404; ``status[path]`` answers that status every time (e.g. 403).
    """

    def __init__(
        self,
        files: dict[str, bytes],
        faults: dict[str, list[str]] | None = None,
        status: dict[str, int] | None = None,
        stall_s: float = 0.6,
        ranges: bool = True,
    ):
        self.files, self.faults = dict(files), {k: list(v) for k, v in (faults or {}).items()}
        self.status, self.stall_s, self.ranges = dict(status or {}), stall_s, ranges
        self.requests: list[tuple[str, str, str]] = []  # (path, fault, range header)
        self._lock = threading.Lock()
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                server._handle(self)

        class Server(http.server.ThreadingHTTPServer):
            def handle_error(self, request, client_address):
                pass  # clients that hang up mid-request (resets, timeouts) are the point here

        self.httpd = Server(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def count(self, path: str) -> int:
        return sum(1 for p, _, _ in self.requests if p == path)

    def _handle(self, h):
        path = h.path.split("?")[0]
        with self._lock:
            queue = self.faults.get(path) or []
            fault = queue.pop(0) if queue else "ok"
            self.requests.append((path, fault, h.headers.get("Range", "")))
        if path in self.status:
            return self._send_error(h, self.status[path])
        if fault == "503-retry-after":
            return self._send_error(h, 503, {"Retry-After": "2"})
        if fault.isdigit():
            return self._send_error(h, int(fault))
        if fault == "timeout":
            time.sleep(self.stall_s)
            h.close_connection = True
            return
        if fault == "reset":
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            return
        if path not in self.files:
            return self._send_error(h, 404)
        body = self.files[path]
        etag = f'"{hashlib.sha1(body).hexdigest()[:16]}"'
        start = 0
        rng = h.headers.get("Range")
        if_range = h.headers.get("If-Range")
        if if_range and if_range != etag:
            rng = None  # RFC 9110: the representation changed, send all of it
        if rng and self.ranges and fault != "norange":
            start = int(rng.split("=")[1].split("-")[0])
            if start >= len(body):
                h.send_response(416)
                h.send_header("Content-Range", f"bytes */{len(body)}")
                h.send_header("Content-Length", "0")
                h.end_headers()
                return
            h.send_response(206)
            h.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            h.send_response(200)
        h.send_header("Accept-Ranges", "bytes" if self.ranges else "none")
        h.send_header("ETag", etag)
        h.send_header("Content-Type", "video/mp4")
        chunk = body[start:]
        h.send_header("Content-Length", str(len(chunk)))
        h.end_headers()
        if fault == "truncate":
            h.wfile.write(chunk[: len(chunk) // 2])
            h.wfile.flush()
            h.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            h.close_connection = True
            return
        if fault == "corrupt":
            chunk = bytes(b ^ 0xFF for b in chunk)
        h.wfile.write(chunk)

    @staticmethod
    def _send_error(h, code, headers=None):
        body = f"error {code}".encode()
        h.send_response(code)
        for k, v in (headers or {}).items():
            h.send_header(k, v)
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)


def make_mp4(path: Path, seconds: float = 2.0, freq: int = 440) -> Path:
    """A real, tiny H.264/AAC mp4 (test pattern + sine tone), deterministic bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [
            "ffmpeg",
            "-v",
            "error",
            "-y",
            "-f",
            "lavfi",
            "-i",
            f"testsrc=size=64x48:rate=10:duration={seconds}",
            "-f",
            "lavfi",
            "-i",
            f"sine=frequency={freq}:sample_rate=16000:duration={seconds}",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-g",
            "5",
            "-pix_fmt",
            "yuv420p",
            "-c:a",
            "aac",
            "-b:a",
            "32k",
            "-shortest",
            "-fflags",
            "+bitexact",
            "-flags:v",
            "+bitexact",
            "-flags:a",
            "+bitexact",
            "-map_metadata",
            "-1",
            "-movflags",
            "+faststart",
            str(path),
        ],
        check=True,
    )
    return path


# --------------------------------------------------------------------------- fake MOSEAS tree

# (video id, language, [(start, end, sentence)]): ids with '_' and a leading '-' on purpose.
VIDEOS = {
    "fr": [
        ("HfTLQqNN_nM", [(0.06, 0.9, "bonjour je suis content"), (1.0, 1.8, "ce film est nul")]),
        ("-ybgknUOTpd", [(0.1, 0.8, "les acides nucléiques"), (0.9, 1.9, "très intéressant")]),
        ("9HYvUk161nA", [(0.05, 1.2, "movieland le guide ultime")]),
        ("aB_cD_eF_gH", [(0.2, 1.5, "je déteste ça"), (1.5, 1.9, "vraiment")]),
    ],
    "es": [
        ("2AnMJ7DAUhE", [(0.1, 1.0, "no me has entendido"), (1.1, 1.9, "te he dicho que soy increíble")]),
        ("Zz_9-8_7xYw", [(0.3, 1.4, "pues ocurre")]),
    ],
}
LANG_DIR = {"fr": ("french", "FR_B1_B2"), "es": ("spanish", "SP_B2")}


def write_fake_moseas(root: Path, annotators: int = 3) -> dict:
    """Write labels + transcripts under ``root`` as the release lays them out; return the truth.

    Truth: {segment_id: {"sentiment": mean, attrs...}} computed independently of the parser.
    Annotator answers are a fixed function of the segment so every aggregate rule is exercised.
    """
    truth = {}
    for lang, videos in VIDEOS.items():
        language, batch = LANG_DIR[lang]
        base = root / language / "data" / batch
        tdir = base / "Transcript" / "Transcript_timestamped_sentences"
        tdir.mkdir(parents=True, exist_ok=True)
        rows = []
        for vi, (vid, segs) in enumerate(videos):
            lines = [f"{vid}___{s:.6f}___{e:.6f}___{text}" for s, e, text in segs]
            (tdir / f"{vid}.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
            for si, (s, e, _) in enumerate(segs):
                key = f"{vid}_{si}"
                scores, ticks = [], {a: 0 for a in ATTRS}
                for k in range(annotators):
                    score = ((vi + 2 * si + k) % 7) - 3
                    scores.append(score)
                    answers = {}
                    for ai, a in enumerate(ATTRS):
                        on = (ai + vi + si + k) % 3 == 0
                        ticks[a] += on
                        answers[f"Answer.{a}"] = ["1", "checked", "yes"][k % 3] if on else ["", "0", "no"][ai % 3]
                    rows.append(
                        {
                            "HITId": f"H{vi}{si}",
                            "AssignmentId": f"A{vi}{si}{k}",
                            "WorkerId": f"W{k}",
                            "AssignmentStatus": "Approved",
                            "Input.VIDEO_ID": f"/cache/multilingual/{language}/data/{batch}/{key}_0:00:0{int(s)}.mp4",
                            "Answer.sentiment": str(score),
                            **answers,
                            "Answer.secret_word1": "banane",
                            "Answer.secret_word2": "bureau",
                            "Answer.secret_word3": "augmenter",
                        }
                    )
                truth[key] = {
                    "sentiment": sum(scores) / len(scores),
                    "lang": lang,
                    "video_id": vid,
                    **{a: float(ticks[a] > 1) for a in ATTRS},
                    "start": s,
                    "end": e,
                }
        header = list(rows[0].keys())
        with open(base / "Batch_3851507_batch_results.csv", "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=header, quoting=csv.QUOTE_ALL)
            w.writeheader()
            w.writerows(rows)
    return truth


def moseas_config(root: Path, media_url: str, order=("local", "http"), **download) -> dict:
    """A full corpus.moseas slice (schema defaults filled) pointing at a fake tree and server."""
    from polysent.config import validate_config

    repo = Path(__file__).resolve().parents[1]
    cfg = {
        "languages": ["fr", "es"],
        "corpus": {
            "source": "moseas",
            "moseas": {
                "root": str(root),
                "media": {
                    "order": list(order),
                    "http": {"url": media_url},
                    "local": {"path": "{root}/{language}/videos/{video_id}{ext}"},
                },
                "download": {
                    "retries": 4,
                    "backoff_base_s": 0.01,
                    "backoff_max_s": 0.05,
                    "connect_timeout_s": 2.0,
                    "read_timeout_s": 0.3,
                    "rate_per_s": 0,
                    "concurrency": 3,
                    "chunk_bytes": 4096,
                    **download,
                },
            },
        },
    }
    return validate_config(cfg, repo / "workflow" / "schemas")["corpus"]["moseas"]


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> dict[str, bytes]:
    """{video_id: mp4 bytes} for every fake MOSEAS video (distinct tones → distinct bytes)."""
    d = tmp_path_factory.mktemp("mp4")
    out = {}
    for i, vid in enumerate(v for vids in VIDEOS.values() for v, _ in vids):
        out[vid] = make_mp4(d / f"{vid}.mp4", freq=300 + 50 * i).read_bytes()
    return out


def test_fault_server_serves_ranges_and_faults(tmp_path):
    import requests

    body = bytes(range(256)) * 10
    with FaultServer({"/f": body}, faults={"/f": ["503", "norange"]}) as srv:
        assert requests.get(srv.url("/f"), timeout=2).status_code == 503
        r = requests.get(srv.url("/f"), headers={"Range": "bytes=100-"}, timeout=2)
        assert r.status_code == 200 and r.content == body
        r = requests.get(srv.url("/f"), headers={"Range": "bytes=100-"}, timeout=2)
        assert r.status_code == 206 and r.content == body[100:]
        assert requests.get(srv.url("/missing"), timeout=2).status_code == 404
