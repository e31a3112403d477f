"""What one image costs each opponent, relative to fashion-cnn: the opponent factors of app/ml/service/cost.py.

For every opponent with a checkpoint: one forward pass and one forward+backward (the loss gradient with respect to
the input, what a white-box attack step needs) on a batch of test images, on one torch thread (as the model
service's worker), median over repetitions interleaved with fashion-cnn's, so machine noise hits both alike.
Prints ms per image and the ratio to fashion-cnn's. Opponents without gradients get the forward only.

Usage: python benchmarks/opponent_cost.py [--batch 32] [--reps 7]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from app.ml.opponents.registry import OpponentCorrupt, OpponentMissing, load_opponent  # noqa: E402
from app.ml.opponents.specs import available_opponents  # noqa: E402
from app.ml.packs import get_pack  # noqa: E402
from app.ml.service.tensors import to_tensor  # noqa: E402

REFERENCE = "fashion-cnn"


def forward_ms(model: torch.nn.Module, images: torch.Tensor) -> float:
    started = time.perf_counter()
    with torch.inference_mode():
        model(images)
    return (time.perf_counter() - started) * 1000 / len(images)


def forward_backward_ms(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor) -> float:
    started = time.perf_counter()
    batch = images.clone().requires_grad_(True)
    loss = torch.nn.functional.cross_entropy(model(batch), labels)
    torch.autograd.grad(loss, batch)
    return (time.perf_counter() - started) * 1000 / len(images)


def main(args: argparse.Namespace) -> None:
    torch.set_num_threads(1)
    device = torch.device("cpu")
    reference = load_opponent(REFERENCE, device=device)
    pack = get_pack(reference.pack_name)
    pixels, targets = pack.load_split("test")
    print("| opponent | forward ms/image | × fashion-cnn | forward+backward ms/image | × fashion-cnn |")
    print("|---|---|---|---|---|")
    for name in available_opponents():
        try:
            model = load_opponent(name, device=device)
        except (OpponentMissing, OpponentCorrupt) as error:
            print(f"| {name} | not measured: {error} | | | |", file=sys.stderr)
            continue
        if model.pack_name != reference.pack_name:
            continue
        images = to_tensor(pixels[: args.batch], device)
        labels = torch.from_numpy(targets[: args.batch]).to(device)
        differentiable = bool(getattr(model, "differentiable", True))
        ratios_fwd, ratios_grad, fwd, grad = [], [], [], []
        for _ in range(args.reps):
            base = forward_ms(reference, images)
            fwd.append(forward_ms(model, images))
            ratios_fwd.append(fwd[-1] / base)
            if differentiable:
                base = forward_backward_ms(reference, images, labels)
                grad.append(forward_backward_ms(model, images, labels))
                ratios_grad.append(grad[-1] / base)
        grad_cells = (
            f"{statistics.median(grad):.2f} | {statistics.median(ratios_grad):.2f}" if grad else "– (no gradients) | –"
        )
        print(
            f"| {name} | {statistics.median(fwd):.2f} | {statistics.median(ratios_fwd):.2f} | {grad_cells} |",
            flush=True,
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--reps", type=int, default=7)
    main(parser.parse_args())
