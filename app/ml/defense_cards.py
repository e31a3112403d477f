"""The defense sections of a model card (Markdown), rendered from the JSON like the rest of the card."""

from __future__ import annotations

from typing import Any


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _params(params: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


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
    if "detector" in card:
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
    if "generator" in card:
        lines += _defense_gan_lines(card)
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


def _defense_gan_lines(card: dict[str, Any]) -> list[str]:
    gen, proj, train = card["generator"], card["projection"], card.get("training", {})
    lines = [
        "## Defense: Defense-GAN",
        "",
        f"- Classifies {card['wraps']}(G(z*)) with z* = argmin_z ||G(z) - x||²: {proj['optimizer']}, "
        f"L = {proj['steps']} steps of size {proj['step_size']:g} from R = {proj['restarts']} starts "
        f"({proj['starts']})",
        f"- Generator `{gen['file']}` (sha256 `{gen['sha256']}`), latent dimension {gen['latent_dim']}: "
        f"{gen['architecture']}",
        f"- GAN training: {train.get('gan_loss')}; {train.get('train_images')}; model selection: "
        f"{train.get('model_selection')}; selected epoch {train.get('selected_epoch')} of "
        f"{train.get('completed_epochs')} completed",
    ]
    if "seconds_per_image_1_thread" in proj:
        lines += [
            f"- On the {card['clean_accuracy_subset']}: {_pct(card['clean_accuracy'])} defended, "
            f"{_pct(proj['undefended_accuracy_same_images'])} for {card['wraps']} alone",
            f"- Projection cost: {proj['seconds_per_image_1_thread']:.3f} s per image ({proj['timing_note']})",
        ]
    lines += [
        "",
        "| epoch | loss D | loss G (with the VAE terms) | held-out projected accuracy | held-out mean squared error "
        "| elapsed s |",
        "|---|---|---|---|---|---|",
    ]
    for e in train.get("epoch_log", []):
        lines.append(
            f"| {e['epoch']} | {e['loss_d']:.3f} | {e['loss_g']:.3f} | {_pct(e['heldout_projected_accuracy'])} | "
            f"{e['heldout_mean_sq_error']:.2f} | {e['elapsed_s']:.0f} |"
        )
    return [*lines, ""]
