"""`arena train --opponent` and `arena transfer-matrix`: options, and clear failures before any long work."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from app.cli import app
from app.ml.training.command import train_named
from app.ml.training.options import TrainingOptions

runner = CliRunner()


def test_train_takes_an_opponent_name() -> None:
    result = runner.invoke(app, ["train", "--help"])
    assert result.exit_code == 0 and "--opponent" in result.output


def test_unknown_opponent_lists_the_known_ones() -> None:
    result = runner.invoke(app, ["train", "--opponent", "fashion-svm"])
    assert result.exit_code == 1
    assert "unknown opponent 'fashion-svm'" in result.output and "fashion-forest" in result.output


def test_net_options_do_not_apply_to_scikit_learn_opponents() -> None:
    with pytest.raises(ValueError, match="--epochs/--batch-size/--lr do not apply"):
        train_named("fashion-forest", TrainingOptions(epochs=3))
    result = runner.invoke(app, ["train", "--opponent", "fashion-logreg", "--lr", "0.1"])
    assert result.exit_code == 1 and "do not apply" in result.output


def test_transfer_matrix_options_and_defaults() -> None:
    result = runner.invoke(app, ["transfer-matrix", "--help"])
    assert result.exit_code == 0
    for option in ("--eps", "--n", "--attack", "--seed"):
        assert option in result.output


@pytest.mark.parametrize(("attack", "message"), [("square", "white-box L-inf attack"), ("pgdd", "unknown attack")])
def test_transfer_matrix_refuses_a_wrong_attack_at_once(attack: str, message: str) -> None:
    result = runner.invoke(app, ["transfer-matrix", "--attack", attack])
    assert result.exit_code == 1 and message in result.output
