"""POST /api/v1/cloak and the /cloak page against the real app: the cloak works end to end, every bad input gets
the right 4xx and message, a second cloak while one runs gets 503 + Retry-After, and nothing of the upload is
left on disk (or in the database) once its result has expired or been deleted."""

from __future__ import annotations

import io
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from sqlalchemy import create_engine, text

from app.ml.cloak import service as cloak_service
from app.ml.cloak import texts, uploads
from tests.conftest import TABLES
from tests.imagenet import needs_imagenet, sample
from tests.ml.cloak.test_uploads import encode, png_claiming, rejected  # noqa: F401 - shared builders

pytestmark = needs_imagenet


def jpeg(size: tuple[int, int] = (240, 160), **kwargs: object) -> bytes:
    return encode(Image.fromarray(sample("chelsea.png", size)), "JPEG", quality=95, **kwargs)


def post(client: TestClient, data: bytes, **fields: str) -> object:
    return client.post("/api/v1/cloak", files={"file": ("photo.jpg", data, "image/jpeg")}, data=fields)


def csrf(client: TestClient) -> str:
    page = client.get("/cloak")
    match = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
    assert match
    return match.group(1)


def row_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    with engine.connect() as conn:
        counts = {t: int(conn.execute(text(f"SELECT COUNT(*) FROM {t}")).scalar() or 0) for t in TABLES}
    engine.dispose()
    return counts


def test_the_api_cloaks_a_photo_within_its_budget(cloak_app: TestClient, sqlite_url: str) -> None:
    photo = sample("chelsea.png", (240, 160))
    rows_before = row_counts(sqlite_url)
    reply = post(cloak_app, encode(Image.fromarray(photo), "PNG"), eps=str(3 / 255))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert body["success"] and body["after"][0]["index"] != body["before"][0]["index"]
    assert len(body["before"]) == len(body["after"]) == 5
    assert body["eps_grey_levels"] == 3 and 0 < body["linf"] <= 3 / 255 + 1e-9 and body["l2"] > 0
    download = cloak_app.get(body["png_url"] + "?download=1")
    assert download.status_code == 200 and download.headers["content-type"] == "image/png"
    assert "attachment" in download.headers["content-disposition"]
    with Image.open(io.BytesIO(download.content)) as png:
        cloaked = np.array(png)
        assert png.format == "PNG" and not png.getexif()
    assert cloaked.shape == photo.shape
    assert np.abs(cloaked.astype(int) - photo.astype(int)).max() == round(body["linf"] * 255) <= 3
    assert row_counts(sqlite_url) == rows_before  # never written to the game database


@pytest.mark.parametrize(
    ("case", "status", "message"),
    [
        ("not an image", 415, uploads.NOT_AN_IMAGE),
        ("gif", 415, uploads.NOT_AN_IMAGE),
        ("truncated", 422, uploads.TRUNCATED),
        ("bomb", 413, uploads.BOMB),
        ("too many pixels", 413, "megapixels"),
        ("animated", 422, uploads.ANIMATED),
        ("empty", 422, uploads.EMPTY),
        ("too large", 413, "10 MB"),
        ("eps", 422, texts.CLOAK_EPS_INVALID),
        ("target", 422, "Unknown ImageNet class"),
        ("no file", 422, "multipart field 'file'"),
    ],
)
def test_bad_input_gets_a_clear_4xx(cloak_app: TestClient, case: str, status: int, message: str) -> None:
    good = jpeg((64, 48))
    frames = [Image.new("RGB", (8, 8), c) for c in ("red", "blue")]
    data, fields = good, {}
    if case == "not an image":
        data = b"#!/bin/sh\necho hello\n"
    elif case == "gif":
        data = encode(frames[0], "GIF")
    elif case == "truncated":
        data = good[: len(good) // 2]
    elif case == "bomb":
        data = png_claiming(30_000, 30_000)
    elif case == "too many pixels":
        data = png_claiming(9_000, 5_000)
    elif case == "animated":
        data = encode(frames[0], "PNG", save_all=True, append_images=frames[1:], duration=50)
    elif case == "empty":
        data = b""
    elif case == "too large":
        data = bytes(10 * 1024 * 1024 + 1)
    elif case == "eps":
        fields = {"eps": "0.5"}
    elif case == "target":
        fields = {"target": "unicorn"}
    if case == "no file":
        reply = cloak_app.post("/api/v1/cloak", data={"eps": "0.01"}, files={"other": ("x.txt", b"x")})
    else:
        reply = post(cloak_app, data, **fields)
    assert reply.status_code == status, reply.text
    assert message in reply.json()["detail"]


def test_nothing_of_the_upload_stays_on_disk(cloak_app: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """The multipart parser spools big uploads to the temporary folder: after the request it holds nothing; the
    result folder holds only the token's files until the visitor deletes them (or they expire)."""
    service = cloak_app.app.state.cloak  # type: ignore[attr-defined]
    spool = Path(tempfile.mkdtemp(prefix="cloak-spool-"))
    monkeypatch.setattr(tempfile, "tempdir", str(spool))
    rng = np.random.default_rng(1)
    big = encode(Image.fromarray(rng.integers(0, 256, (900, 800, 3), dtype=np.uint8)), "PNG")
    assert len(big) > 2 * 1024 * 1024  # past the 1 MB in-memory spool: the parser really uses the disk
    reply = post(cloak_app, big, eps=str(2 / 255))
    assert reply.status_code == 200, reply.text
    assert list(spool.iterdir()) == []
    token = reply.json()["png_url"].split("/")[-2]
    assert sorted(p.name for p in (service.result_dir / token).iterdir()) == sorted(cloak_service.FILES)
    reply = cloak_app.post(f"/cloak/r/{token}/delete", data={"csrf_token": csrf(cloak_app)}, follow_redirects=False)
    assert reply.status_code == 303
    assert not (service.result_dir / token).exists()
    assert cloak_app.get(f"/cloak/r/{token}/cloaked.png").status_code == 404
    # and results expire by themselves
    reply = post(cloak_app, jpeg((64, 48)), eps=str(2 / 255))
    token = reply.json()["png_url"].split("/")[-2]
    assert (service.result_dir / token).exists()
    assert service.sweep(now=float("inf")) >= 1
    assert list(service.result_dir.iterdir()) == []


def test_the_page_works_without_javascript(cloak_app: TestClient) -> None:
    page = cloak_app.get("/cloak")
    assert page.status_code == 200
    assert "never written to the game database" in page.text and "deleted after 1 minutes" in page.text
    assert '<option value="Egyptian cat">' in page.text and 'enctype="multipart/form-data"' in page.text
    reply = cloak_app.post(
        "/cloak",
        files={"file": ("me.jpg", jpeg(), "image/jpeg")},
        data={"csrf_token": csrf(cloak_app), "strength": "subtle", "goal": "untargeted"},
    )
    assert reply.status_code == 200
    assert "Download the cloaked PNG" in reply.text and "Cloaked:" in reply.text
    png_url = re.search(r'href="([^"]+cloaked\.png)\?download=1"', reply.text)
    assert png_url and cloak_app.get(png_url.group(1)).status_code == 200
    refused = cloak_app.post(
        "/cloak", files={"file": ("me.jpg", b"nope", "image/jpeg")}, data={"csrf_token": csrf(cloak_app)}
    )
    assert refused.status_code == 415 and uploads.NOT_AN_IMAGE in refused.text
    no_csrf = cloak_app.post("/cloak", files={"file": ("me.jpg", jpeg(), "image/jpeg")})
    assert no_csrf.status_code == 403


def test_htmx_progress_streams_and_one_cloak_runs_at_a_time(cloak_app: TestClient) -> None:
    token = csrf(cloak_app)
    started = cloak_app.post(
        "/cloak",
        files={"file": ("me.jpg", jpeg((480, 320)), "image/jpeg")},
        data={"csrf_token": token, "strength": "medium", "eot": "1"},
        headers={"HX-Request": "true"},
    )
    assert started.status_code == 200 and 'sse-connect="/cloak/jobs/' in started.text
    busy = post(cloak_app, jpeg((64, 48)))
    assert busy.status_code == 503 and busy.headers["Retry-After"] == "5"
    assert busy.json()["detail"] == texts.CLOAK_BUSY
    job = re.search(r"/cloak/jobs/([^/]+)/events", started.text)
    assert job
    with cloak_app.stream("GET", f"/cloak/jobs/{job.group(1)}/events") as stream:
        body = "".join(stream.iter_text())
    assert "event: progress" in body and "of 4: the model now says" in body
    assert body.rstrip().split("\n\n")[-1].startswith("event: done")
    assert "Download the cloaked PNG" in body
