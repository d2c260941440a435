"""Fault-tolerant media fetching against a loopback server that misbehaves on purpose."""

from __future__ import annotations

import hashlib
import random

import pytest

from polysent.config import complete
from polysent.corpus.download import (
    DownloadFailed,
    Fetcher,
    Job,
    RateLimiter,
    TooManyFailures,
    backoff_delay,
    check_success_rate,
    fetch_http,
)
from test_moseas_support import FaultServer

BODY = bytes(random.Random(1).getrandbits(8) for _ in range(50_000))
FAST = {
    **complete({}, "corpus", "moseas", "download"),
    "retries": 4,
    "backoff_base_s": 0.0,
    "backoff_max_s": 0.0,
    "connect_timeout_s": 2.0,
    "read_timeout_s": 0.3,
    "chunk_bytes": 4096,
    "rate_per_s": 0,
}


def _fetch(srv, dest, **kw):
    return fetch_http(srv.url("/v.mp4"), dest, {**FAST, **kw.pop("settings", {})}, **kw)


@pytest.mark.parametrize(
    "faults",
    [
        ["500"],
        ["503", "502", "429"],
        ["timeout"],
        ["reset"],
        ["truncate"],
        ["truncate", "truncate", "500"],
        ["timeout", "reset", "truncate", "503"],
    ],
    ids=lambda f: "+".join(f),
)
def test_transient_faults_are_retried_and_file_is_identical(tmp_path, faults):
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": list(faults)}, stall_s=0.6) as srv:
        attempts = _fetch(srv, tmp_path / "v.mp4")
        assert (tmp_path / "v.mp4").read_bytes() == BODY
        assert attempts == len(faults) + 1 == srv.count("/v.mp4")
    assert not (tmp_path / "v.mp4.part").exists()


def test_truncated_body_resumes_with_range(tmp_path):
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["truncate"]}) as srv:
        _fetch(srv, tmp_path / "v.mp4")
        ranges = [r for _, _, r in srv.requests]
    assert ranges[0] == "" and ranges[1].startswith("bytes=") and int(ranges[1][6:-1]) > 0
    assert (tmp_path / "v.mp4").read_bytes() == BODY


def test_stale_part_file_is_resumed(tmp_path):
    (tmp_path / "v.mp4.part").write_bytes(BODY[:12_345])
    with FaultServer({"/v.mp4": BODY}) as srv:
        _fetch(srv, tmp_path / "v.mp4")
        assert srv.requests[0][2] == "bytes=12345-"
    assert (tmp_path / "v.mp4").read_bytes() == BODY


def test_server_without_range_support_restarts_from_zero(tmp_path):
    (tmp_path / "v.mp4.part").write_bytes(b"garbage" * 100)
    with FaultServer({"/v.mp4": BODY}, ranges=False) as srv:
        _fetch(srv, tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == BODY


def test_complete_part_file_answered_416_is_accepted(tmp_path):
    (tmp_path / "v.mp4.part").write_bytes(BODY)
    with FaultServer({"/v.mp4": BODY}) as srv:
        _fetch(srv, tmp_path / "v.mp4")
    assert (tmp_path / "v.mp4").read_bytes() == BODY


def test_checksum_mismatch_restarts_then_succeeds(tmp_path):
    digest = hashlib.sha256(BODY).hexdigest()
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["corrupt"]}) as srv:
        attempts = _fetch(srv, tmp_path / "v.mp4", sha256=digest)
    assert attempts == 2 and (tmp_path / "v.mp4").read_bytes() == BODY


def test_persistent_corruption_gives_up_with_reason(tmp_path):
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["corrupt"] * 10}) as srv:
        with pytest.raises(DownloadFailed) as err:
            _fetch(srv, tmp_path / "v.mp4", sha256="0" * 64)
    assert not err.value.permanent
    assert err.value.reason == "gave up after 5 attempts; last error: verification failed: SHA-256 mismatch"
    assert not (tmp_path / "v.mp4").exists() and not (tmp_path / "v.mp4.part").exists()


def test_wrong_known_size_is_detected(tmp_path):
    with FaultServer({"/v.mp4": BODY}) as srv:
        with pytest.raises(DownloadFailed, match=r"size 50000 bytes, expected 49999"):
            _fetch(srv, tmp_path / "v.mp4", size=49_999, settings={"retries": 1})


@pytest.mark.parametrize("code", [404, 403, 410])
def test_permanent_status_is_not_retried(tmp_path, code):
    with FaultServer({}, status={"/v.mp4": code}) as srv:
        with pytest.raises(DownloadFailed) as err:
            _fetch(srv, tmp_path / "v.mp4")
        assert srv.count("/v.mp4") == 1
    assert err.value.permanent and err.value.reason.startswith(f"HTTP {code}")


def test_exhausted_retries_name_last_error(tmp_path):
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["503"] * 3}) as srv:
        with pytest.raises(DownloadFailed) as err:
            _fetch(srv, tmp_path / "v.mp4", settings={"retries": 2})
    assert err.value.reason == "gave up after 3 attempts; last error: HTTP 503 Service Unavailable"
    assert not err.value.permanent


def test_backoff_is_exponential_capped_and_jittered():
    s = {"backoff_base_s": 1.0, "backoff_max_s": 10.0}
    rng = random.Random(0)
    delays = [[backoff_delay(k, s, rng) for _ in range(200)] for k in range(6)]
    for k, ds in enumerate(delays):
        cap = min(10.0, 2.0**k)
        assert all(0 <= d <= cap for d in ds)
        assert max(ds) > 0.8 * cap and len(set(ds)) > 100  # full jitter, not a fixed delay


def test_backoff_sleeps_between_attempts(tmp_path):
    slept = []
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["500", "500"]}) as srv:
        fetch_http(
            srv.url("/v.mp4"),
            tmp_path / "v.mp4",
            {**FAST, "backoff_base_s": 1.0, "backoff_max_s": 3.0},
            rng=random.Random(3),
            sleep=slept.append,
        )
    assert len(slept) == 2 and 0 <= slept[0] <= 1.0 and 0 <= slept[1] <= 2.0


def test_rate_limiter_spaces_request_starts():
    import time

    lim = RateLimiter(50.0)
    t0 = time.monotonic()
    for _ in range(6):
        lim.wait()
    assert time.monotonic() - t0 >= 5 / 50.0 * 0.9


def test_fetcher_falls_back_through_sources_and_reports(tmp_path):
    local = tmp_path / "mirror" / "a.mp4"
    local.parent.mkdir()
    local.write_bytes(BODY[:1000])
    files = {"/b.mp4": BODY, "/c.mp4": BODY[::-1]}
    with FaultServer(files, faults={"/b.mp4": ["500", "truncate"]}, status={"/d.mp4": 403}) as srv:
        jobs = [
            Job(
                "a",
                str(tmp_path / "out/a.mp4"),
                [{"kind": "local", "location": str(local)}, {"kind": "http", "location": srv.url("/a.mp4")}],
            ),
            Job(
                "b",
                str(tmp_path / "out/b.mp4"),
                [
                    {"kind": "local", "location": str(tmp_path / "none.mp4")},
                    {"kind": "http", "location": srv.url("/b.mp4")},
                ],
            ),
            Job("c", str(tmp_path / "out/c.mp4"), [{"kind": "http", "location": srv.url("/c.mp4")}]),
            Job("d", str(tmp_path / "out/d.mp4"), [{"kind": "http", "location": srv.url("/d.mp4")}]),
        ]
        out = Fetcher({**FAST, "concurrency": 3}).run(jobs)
    by = {o.key: o for o in out}
    assert [o.key for o in out] == ["a", "b", "c", "d"]
    assert by["a"].ok and by["a"].source == "local" and srv.count("/a.mp4") == 0
    assert by["b"].ok and by["b"].source == "http" and (tmp_path / "out/b.mp4").read_bytes() == BODY
    assert by["c"].ok and (tmp_path / "out/c.mp4").read_bytes() == BODY[::-1]
    assert not by["d"].ok and by["d"].permanent and by["d"].reason == "http: HTTP 403 Forbidden"
    with pytest.raises(TooManyFailures, match=r"only 75.0% of 4 media files arrived"):
        check_success_rate(out, 0.9)
    assert check_success_rate(out, 0.75) == 0.75


def test_existing_complete_file_is_not_downloaded_again(tmp_path):
    (tmp_path / "a.mp4").write_bytes(BODY)
    with FaultServer({"/a.mp4": BODY}) as srv:
        out = Fetcher(FAST).run([Job("a", str(tmp_path / "a.mp4"), [{"kind": "http", "location": srv.url("/a.mp4")}])])
        assert srv.count("/a.mp4") == 0
    assert out[0].ok and out[0].source == "existing"


def test_connection_refused_is_transient(tmp_path):
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    with pytest.raises(DownloadFailed) as err:
        fetch_http(f"http://127.0.0.1:{port}/x", tmp_path / "x", {**FAST, "retries": 1})
    assert not err.value.permanent and "connection error" in err.value.reason


def test_unexpected_error_in_one_job_does_not_stop_the_others(tmp_path):
    (tmp_path / "blocker").write_text("a file where a folder should be")
    with FaultServer({"/a.mp4": BODY}) as srv:
        jobs = [
            Job("x", str(tmp_path / "blocker/x.mp4"), [{"kind": "http", "location": srv.url("/a.mp4")}]),
            Job("a", str(tmp_path / "a.mp4"), [{"kind": "http", "location": srv.url("/a.mp4")}]),
        ]
        out = Fetcher(FAST).run(jobs)
    assert not out[0].ok and out[0].reason.startswith("unexpected error: ")
    assert out[1].ok and (tmp_path / "a.mp4").read_bytes() == BODY


def test_resource_changed_between_attempts_restarts_via_if_range(tmp_path):
    new = BODY[::-1]
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["truncate"]}) as srv:
        settings = {**FAST, "retries": 0}
        with pytest.raises(DownloadFailed, match="IncompleteRead"):
            _fetch(srv, tmp_path / "v.mp4", settings=settings)
        assert (tmp_path / "v.mp4.part").stat().st_size > 0
        srv.files["/v.mp4"] = new  # the server's copy changes before we resume
        _fetch(srv, tmp_path / "v.mp4")
        assert srv.requests[-1][2].startswith("bytes=")  # we did try to resume...
    assert (tmp_path / "v.mp4").read_bytes() == new  # ...but got the new file whole, not a splice
    assert not (tmp_path / "v.mp4.part.validator").exists()


def test_retry_after_is_honoured_up_to_backoff_max(tmp_path):
    slept = []
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["503-retry-after"]}) as srv:
        fetch_http(
            srv.url("/v.mp4"),
            tmp_path / "v.mp4",
            {**FAST, "backoff_base_s": 0.01, "backoff_max_s": 5.0},
            rng=random.Random(0),
            sleep=slept.append,
        )
    assert slept == [2.0]
    slept.clear()
    with FaultServer({"/v.mp4": BODY}, faults={"/v.mp4": ["503-retry-after"]}) as srv:
        fetch_http(
            srv.url("/v.mp4"),
            tmp_path / "w.mp4",
            {**FAST, "backoff_base_s": 0.01, "backoff_max_s": 0.5},
            rng=random.Random(0),
            sleep=slept.append,
        )
    assert slept == [0.5]
