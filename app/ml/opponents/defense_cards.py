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
    if "ibp_training" in train:
        lines += _certified_lines(card, train)
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
                f"| {row_id} | {r['role']} | {r.get('label', r['attack'])} | {_params(r['params'])} | {r['eps']:g} | "
                f"{r['n']} | "
                f"{_pct(r['accuracy'])} | {_pct(r['success_rate'])} | {_pct(r.get('detected_of_fooled'))} | "
                f"{_pct(r.get('evaded'))} | {r['time_s']:.0f} |"
            )
        lines.append("")
        lines += _implementation_lines(lab["rows"])
        proved = [(row_id, r) for row_id, r in lab["rows"].items() if "certified_accuracy" in r]
        if proved:
            lines += [
                "Certified by IBP on the same images (the attack cannot go below it; certified images it fooled "
                "would mean an unsound bound): "
                + "; ".join(
                    f"{row_id}: {_pct(r['certified_accuracy'])} certified, {r['certified_fooled']} certified "
                    "images fooled"
                    for row_id, r in proved
                )
                + ".",
                "",
            ]
    if "adaptive_attack" in card:
        aa = card["adaptive_attack"]
        lines += [f"Rounds should attack it with `{aa['attack']}` ({_params(aa['params'])}): {aa['why']}.", ""]
    return lines


def _certified_lines(card: dict[str, Any], train: dict[str, Any]) -> list[str]:
    ibp = train["ibp_training"]
    lines = [
        "## Defense: certified training (interval bound propagation)",
        "",
        f"- Loss: {ibp['loss']}; trained at eps {ibp['train_eps']:g} for eps {ibp['eps']:g} ({ibp['eps_schedule']})",
        f"- Model selection: {ibp['model_selection']}; selected epoch {train.get('selected_epoch')} of "
        f"{train.get('completed_epochs')} completed ({train['epochs']} planned)",
        "",
    ]
    cert = card.get("certified")
    if cert:
        at = ", ".join(f"eps {eps}: **{_pct(acc)}**" for eps, acc in cert["certified_accuracy"].items())
        q = cert["radius_quantiles"]
        lines += [
            f"Certified by `{cert['command']}` on {cert['subset']} (n = {cert['n']:,}; {cert['method']}): "
            f"clean accuracy {_pct(cert['clean_accuracy'])}; certified accuracy {at}.",
            f"Certified radius: median **{cert['median_radius']:.4f}** ({255 * cert['median_radius']:.1f}/255), "
            f"quartiles {q['q25']:.4f} and {q['q75']:.4f}, mean {cert['mean_radius']:.4f}; {cert['radius_means']}.",
            "",
        ]
    lines += [
        "| epoch | eps | kappa | train loss | natural CE | IBP CE | held-out clean | held-out certified | elapsed s |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for e in train.get("epoch_log", []):
        lines.append(
            f"| {e['epoch']} | {e['train_eps']:.4f} | {e['kappa']:.3f} | {e['train_loss']:.4f} | "
            f"{e['train_natural_ce']:.4f} | {e['train_ibp_ce']:.4f} | {_pct(e['heldout_clean'])} | "
            f"{_pct(e['heldout_certified'])} | {e['elapsed_s']:.0f} |"
        )
    lines.append("")
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


def _implementation_lines(rows: dict[str, Any]) -> list[str]:
    """What the rows that are not registry attacks ran, exactly (and, for a row on its own images, which)."""
    lines = []
    for row_id, r in rows.items():
        if "implementation" not in r:
            continue
        text = f"- {row_id}: {r['implementation']}"
        if "attacked_view" in r:
            text += f". Attacked: {r['attacked_view']}"
        if "subset" in r:
            text += f". Measured {r['measured']} on the {r['subset']} (n = {r['n']}; clean accuracy "
            text += f"{_pct(r['clean_accuracy'])})"
        if "strongest_by" in r:
            text += f". Strongest by {r['strongest_by']}; difference from the reference: {r['differs_from_reference']}"
        lines.append(text + ".")
    return [*lines, ""] if lines else []
