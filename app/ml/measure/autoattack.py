"""The defense lab's standard AutoAttack row: torchattacks' ``AutoAttack(version="standard")`` as it ships.

Croce & Hein 2020's standard ensemble (APGD-CE, APGD-T, FAB-T, Square), which RobustBench reports as a model's
robust accuracy: each attack runs on the images the ones before it left correctly classified, and an image counts
as robust only if all four fail. It is torchattacks' implementation with its own settings, which this module reads
back from the constructed attack (:func:`autoattack_components`) rather than restating: torchattacks runs APGD-CE,
APGD-T and FAB-T for 10 iterations each, where the reference implementation (fra31/auto-attack) runs 100; Square
gets the reference 5,000 queries. The card names what ran.

For an input defense the attack sees :func:`~app.ml.defenses.base.attack_view`: the BPDA view (the transform's
value forward, the identity backward) that the lab's adaptive rows differentiate through; its forward values are
the deployed model's, so Square and every success check query the real defense. The detector is not in
AutoAttack's loss; the row counts what it flags afterwards, as the other rows do.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor

from app.ml.defenses.base import InputDefense, attack_view
from app.ml.model import ArenaModel

AUTOATTACK = "autoattack"  # not a registry attack: torchattacks' AutoAttack(version="standard")
AUTOATTACK_LABEL = "AutoAttack (standard)"
AUTOATTACK_VERSION = "standard"
REFERENCE_ITERATIONS = 100  # APGD-CE, APGD-T and FAB-T in fra31/auto-attack's version="standard"


def build_autoattack(model: ArenaModel, eps: float, seed: int, view: ArenaModel | None = None) -> Any:
    """torchattacks' standard AutoAttack (L∞, ``eps``, ``seed``) on ``view`` (default: the view of ``model`` the
    lab attacks)."""
    import torchattacks  # optional (the `attacks` extra): only the AutoAttack and APGD rows need it

    attacked = view if view is not None else attack_view(model)
    return torchattacks.AutoAttack(
        attacked, norm="Linf", eps=eps, version=AUTOATTACK_VERSION, n_classes=model.num_classes, seed=seed
    )


def autoattack_components(attack: Any) -> list[dict[str, Any]]:
    """What each of the ensemble's attacks is set to, read from the torchattacks objects (in the order they run)."""
    out = []
    for sub in attack._autoattack.attacks:  # torchattacks keeps the ensemble here; no public accessor
        kind = type(sub).__name__
        entry: dict[str, Any] = {"attack": kind, "restarts": int(sub.n_restarts)}
        if kind == "Square":
            entry["queries"] = int(sub.n_queries)
        else:
            entry["iterations"] = int(sub.steps)
        if kind in ("APGD", "APGDT"):
            entry["loss"] = "ce" if kind == "APGD" else "dlr (targeted)"
        if kind == "FAB":
            entry["targeted"] = bool(sub.multi_targeted)
        if hasattr(sub, "n_target_classes") and (kind == "APGDT" or getattr(sub, "multi_targeted", False)):
            entry["target_classes"] = int(sub.n_target_classes)
        out.append(entry)
    return out


def describe(components: list[dict[str, Any]]) -> str:
    """One line naming every attack of the ensemble with its settings, e.g. ``APGD (ce, 10 iterations, ...)``."""
    parts = []
    for c in components:
        bits = [c["loss"]] if "loss" in c else []
        if "target_classes" in c:
            bits.append(f"{c['target_classes']} target classes")
        bits.append(f"{c['queries']} queries" if "queries" in c else f"{c['iterations']} iterations")
        bits.append(f"{c['restarts']} restart" + ("s" if c["restarts"] != 1 else ""))
        parts.append(f"{c['attack']} ({', '.join(bits)})")
    return ", then ".join(parts)


def autoattack_batch(model: ArenaModel, images: Tensor, labels: Tensor, eps: float, seed: int) -> Tensor:
    """The adversarial images standard AutoAttack finds for one batch (an image it cannot fool comes back as is)."""
    attack = build_autoattack(model, eps, seed)
    adv: Tensor = attack(images, labels)
    return adv.detach()


def autoattack_note(model: ArenaModel, eps: float, seed: int, seed_label: str | None = None) -> dict[str, Any]:
    """What the row ran, exactly: torchattacks' version, every component's settings, the view attacked
    (``seed_label``: how the seed is given where it is not one number, as in a chunked run)."""
    import torchattacks

    components = autoattack_components(build_autoattack(model, eps, seed))
    if isinstance(model, InputDefense) and attack_view(model) is model:
        view = (
            "the deployed defense itself, transform included: its transform is differentiable, so the attack "
            "follows its real gradient (as the adaptive rows do)"
        )
    elif isinstance(model, InputDefense):
        view = (
            "BPDA view of the defense (its transform forward, the identity backward; the view the adaptive rows "
            "differentiate through), so Square and every success check see the deployed defense"
        )
    else:
        view = "the deployed model itself (it is differentiable end to end)"
    if isinstance(model, InputDefense) and model.has_detector:
        view += "; the detector is not in the loss, detected/evaded count its flags afterwards"
    return {
        "implementation": f"torchattacks {torchattacks.__version__} AutoAttack(version='standard', norm='Linf', "
        f"eps={eps:g}, seed={seed_label or seed}): {describe(components)}; each attack runs on the images the ones "
        "before it left correct, an image is robust only if all fail",
        "components": components,
        "attacked_view": view,
        "strongest_by": "RobustBench's convention: standard AutoAttack is the reported robust accuracy",
        "differs_from_reference": _difference(components),
        "seeding": f"torchattacks seeds each of its attacks with {seed} once per batch of images",
    }


def _difference(components: list[dict[str, Any]]) -> str:
    """How these settings differ from the reference implementation's standard version (100 iterations, 5,000
    Square queries), or that they do not."""
    iterations = [(c["attack"], c["iterations"]) for c in components if "iterations" in c]
    short = [f"{kind} {steps}" for kind, steps in iterations if steps != REFERENCE_ITERATIONS]
    if not short:
        return "none: the reference implementation's iterations and queries"
    return (
        f"iterations here: {', '.join(short)}; the reference implementation (fra31/auto-attack) runs "
        f"{REFERENCE_ITERATIONS} each, so this is the weaker, cheaper setting torchattacks ships"
    )
