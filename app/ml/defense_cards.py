"""The defense sections of a model card (Markdown), rendered from the JSON like the rest of the card."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def _magnet_lines(card: dict[str, Any]) -> list[str]:
    ae, det, wrapped = card["autoencoder"], card["detector"], card["wrapped_checkpoint"]
    lines = [
        "## Defense: MagNet (detector + reformer)",
        "",
        f"- Autoencoder: {ae['structure']}; {ae['parameters']:,} parameters; trained on {ae['trained_on']}",
        f"- Loss: {ae['loss']}",
        f"- Classifies {det['classifies']}; the wrapped net is `{wrapped['file']}`, sha256 `{wrapped['sha256']}` "
        f"(clean accuracy alone {_pct(card.get('clean_accuracy_wrapped_net'))})",
        f"- Detector score: {det['score']}; threshold {det['threshold']:.6f}, chosen for a "
        f"{_pct(det['target_fpr'])} false positive rate on {det['calibrated_on']}",
        f"- False positive rate measured on the {det['test_fpr_subset']}: **{_pct(det['test_fpr'])}** "
        f"(n = {det['test_fpr_n']}); on all {det['test_fpr_all_n']:,} test images {_pct(det['test_fpr_all'])}",
        f"- Clean test images both accepted and classified right: {_pct(card['clean_accepted_and_correct'])} "
        f"(n = {card['clean_accuracy_n']:,})",
        "",
        "| epoch | train loss (noisy input) | held-out MSE | elapsed s |",
        "|---|---|---|---|",
    ]
    lines += [
        f"| {e['epoch']} | {e['train_loss']:.5f} | {e['heldout_mse']:.5f} | {e['elapsed_s']:.0f} |"
        for e in ae["epoch_log"]
    ]
    return [*lines, ""]


def render_defense_lines(card: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    train = card.get("training", {})
    if "adversarial_training" in train:
        at = train["adversarial_training"]
        lines += [
            "## Defense: PGD adversarial training",
            "",
            f"- Attack during training: {at['attack']}, eps {at['eps']:g} ({at['eps_schedule']})",
            f"- Model selection: {at['model_selection']}; selected epoch {train.get('selected_epoch')} of "
            f"{train.get('completed_epochs')} completed",
            "",
            "| epoch | adversarial train loss | held-out clean | held-out PGD-10 | elapsed s |",
            "|---|---|---|---|---|",
        ]
        for e in train.get("epoch_log", []):
            lines.append(
                f"| {e['epoch']} | {e['train_adv_loss']:.4f} | {_pct(e['heldout_clean'])} | "
                f"{_pct(e['heldout_pgd10'])} | {e['elapsed_s']:.0f} |"
            )
        lines.append("")
    if "distillation" in train:
        d = train["distillation"]
        lines += [
            "## Defense: defensive distillation",
            "",
            f"- {d['recipe']}",
            f"- Teacher clean accuracy {_pct(d['teacher_clean_accuracy'])} (all 10,000 test images); "
            f"{d['epochs_each']} epochs each",
            "",
        ]
    if "autoencoder" in card:
        lines += _magnet_lines(card)
    elif "detector" in card:
        det = card["detector"]
        lines += [
            "## Defense: feature squeezing",
            "",
            f"- Classifies {det['classifies']}; squeezers: {', '.join(det['squeezers'])}",
            f"- Detector score: {det['score']}; threshold {det['threshold']:.4f}, chosen for a "
            f"{_pct(det['target_fpr'])} false positive rate on {det['calibrated_on']}",
            f"- False positive rate measured on the {det['test_fpr_subset']}: **{_pct(det['test_fpr'])}** "
            f"(n = {det['test_fpr_n']})",
            "",
        ]
    if "transform" in card:
        tr = card["transform"]
        lines += ["## Defense: input transform", "", f"- {tr['kind']}, quality {tr['quality']}", ""]
    lab = card.get("defense_lab")
    if lab:
        lines += [
            "## Defense lab",
            "",
            f"`{lab['command']}`, measured {lab['measured']} on the {lab['subset']} (n = {lab['n']}; clean "
            f"accuracy {_pct(lab['clean_accuracy'])}); {lab['seeding']}. Accuracy: {lab['accuracy_means']}.",
            "",
            "| row | role | attack | parameters | eps | n | accuracy | success rate | detected | evaded | time s |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row_id, r in lab["rows"].items():
            lines.append(
                f"| {row_id} | {r['role']} | {r['attack']} | {_params(r['params'])} | {r['eps']:g} | {r['n']} | "
                f"{_pct(r['accuracy'])} | {_pct(r['success_rate'])} | {_pct(r.get('detected_of_fooled'))} | "
                f"{_pct(r.get('evaded'))} | {r['time_s']:.0f} |"
            )
        lines.append("")
    if "adaptive_attack" in card:
        aa = card["adaptive_attack"]
        lines += [f"Rounds should attack it with `{aa['attack']}` ({_params(aa['params'])}): {aa['why']}.", ""]
    return lines
