"""The attacks: one module per attack, one interface (``base``), and the registry (``get_attack``,
``describe_attacks``, ...), whose public names this package re-exports."""

from __future__ import annotations

from app.ml.attacks.advgan import AdvGAN
from app.ml.attacks.base import Attack, AttackParams, AttackResult, RunOutput
from app.ml.attacks.bpda import BPDAPGD
from app.ml.attacks.cw import CarliniWagnerL2
from app.ml.attacks.deepfool import DeepFool, DeepFoolLinf
from app.ml.attacks.evadehc import EvadeHC
from app.ml.attacks.fgsm import FGSM
from app.ml.attacks.genattack import GenAttack
from app.ml.attacks.hopskipjump import HopSkipJump
from app.ml.attacks.inputs import AttackBatch, GeneratorArg
from app.ml.attacks.mifgsm import MIFGSM
from app.ml.attacks.nes import NES
from app.ml.attacks.one_pixel import OnePixel
from app.ml.attacks.pgd import PGD
from app.ml.attacks.pgd_l2 import PGDL2
from app.ml.attacks.queries import QueryBudgetExceeded, QueryCounter
from app.ml.attacks.registry import available_attacks, describe_attack, describe_attacks, get_attack
from app.ml.attacks.square import SquareAttack
from app.ml.attacks.transfer import TransferAttack

__all__ = [
    "AdvGAN",
    "BPDAPGD",
    "FGSM",
    "MIFGSM",
    "NES",
    "PGD",
    "PGDL2",
    "Attack",
    "AttackBatch",
    "AttackParams",
    "AttackResult",
    "CarliniWagnerL2",
    "DeepFool",
    "DeepFoolLinf",
    "EvadeHC",
    "GenAttack",
    "GeneratorArg",
    "HopSkipJump",
    "OnePixel",
    "QueryBudgetExceeded",
    "QueryCounter",
    "RunOutput",
    "SquareAttack",
    "TransferAttack",
    "available_attacks",
    "describe_attack",
    "describe_attacks",
    "get_attack",
]
