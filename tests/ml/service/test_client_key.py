"""The asking client's key on image and explain jobs: optional, outside equality and the batch key, and carried by the
wire codec to `arena modelsvc` unchanged."""

from __future__ import annotations

import numpy as np
import pytest

from app.ml.service.contracts import ImageJob, job_from_wire, job_to_wire
from app.ml.service.explain_contracts import ExplainJob, explain_job_from_wire, explain_job_to_wire
from app.ml.service.wire import WireError


def test_the_client_key_travels_over_the_wire_and_is_not_part_of_the_job() -> None:
    job = ImageJob("fashion-cnn", "pgd", (("steps", 20),), 3, 0.05, 7, client="player-1")
    back = job_from_wire(job_to_wire(job))
    assert back.client == "player-1"
    same_from_another = ImageJob("fashion-cnn", "pgd", (("steps", 20),), 3, 0.05, 7, client="player-2")
    assert job == same_from_another and hash(job) == hash(same_from_another)
    assert job.batch_key == same_from_another.batch_key
    unkeyed = dict(job_to_wire(job))
    del unkeyed["client"]
    assert job_from_wire(unkeyed).client == "", "an older caller without the field still works"
    with pytest.raises(WireError, match="client"):
        job_from_wire({**job_to_wire(job), "client": 5})


def test_an_explain_jobs_client_key_travels_too() -> None:
    image = np.zeros((4, 4), dtype=np.uint8)
    job = ExplainJob("fashion-cnn", image, image, 1, 0.05, "linf", 7, client="player-1")
    assert explain_job_from_wire(explain_job_to_wire(job)).client == "player-1"
