"""Natural-image rounds: the pack finds its offline photos (and the operator's), a round offers four distinct
choices with the truth and the model's answer among them, and a round plays without JavaScript end to end."""

from __future__ import annotations

import random
import re
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from app.ml.packs.natural import available_photos, four_choices
from tests.imagenet import needs_imagenet

CLASSES = ("tabby", "tiger cat", "Egyptian cat", "lynx", "espresso", "palace", "missile")


def test_four_distinct_choices_with_truth_and_model_answer() -> None:
    ranked = ["Egyptian cat", "tiger cat", "tabby", "lynx", "Persian cat"]
    for seed in range(20):
        choices = four_choices("tabby", "tiger cat", ranked, random.Random(seed))
        assert len(set(choices)) == 4 and {"tabby", "tiger cat"} <= set(choices)
    # when the model is not fooled, its answer is the truth and the next likely classes fill in
    assert set(four_choices("tabby", "tabby", ranked, random.Random(0))) == {
        "tabby",
        "Egyptian cat",
        "tiger cat",
        "lynx",
    }


@needs_imagenet
def test_the_pack_has_the_sample_photos_and_the_operators(tmp_path: Path) -> None:
    (tmp_path / "tiger_cat").mkdir()
    Image.new("RGB", (32, 32), "orange").save(tmp_path / "tiger_cat" / "mine.png")
    (tmp_path / "not a class").mkdir()
    Image.new("RGB", (32, 32)).save(tmp_path / "not a class" / "skipped.png")
    photos = available_photos(CLASSES, tmp_path)
    names = {p.name: p.true_class for p in photos}
    assert names == {
        "chelsea": "tabby",
        "coffee": "espresso",
        "rocket": "missile",
        "china": "palace",
        "mine": "tiger cat",
    }
    assert all(p.path.is_file() and p.credit for p in photos)


@needs_imagenet
def test_a_natural_round_plays_without_javascript(cloak_app: TestClient) -> None:
    page = cloak_app.get("/natural")
    token = re.search(r'name="csrf_token" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    started = cloak_app.post("/natural/rounds", data={"csrf_token": token}, follow_redirects=False)
    assert started.status_code == 303
    round_url = started.headers["location"]
    shown = cloak_app.get(round_url)
    choices = re.findall(r'name="choice" value="([^"]+)"', shown.text)
    assert len(choices) == 4 and len(set(choices)) == 4
    assert cloak_app.get(round_url + "/shown.png").headers["content-type"] == "image/png"
    assert cloak_app.get(round_url + "/original.png").status_code == 404  # nothing gives the answer away
    answered = cloak_app.post(round_url + "/answer", data={"csrf_token": token, "choice": choices[0]})
    assert answered.status_code == 200 and "Truth" in answered.text and "Machine said" in answered.text
    assert cloak_app.get(round_url + "/original.png").status_code == 200
    again = cloak_app.post(round_url + "/answer", data={"csrf_token": token, "choice": choices[1]})
    assert again.status_code == 409
