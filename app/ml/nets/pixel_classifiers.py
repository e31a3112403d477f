"""Torch evaluators for the scikit-learn opponents, built from plain arrays (no pickle, no scikit-learn at run time).

scikit-learn models are normally saved with pickle/joblib, which runs code on load. Here a trained estimator is
reduced to its arrays (logistic regression: ``coef_``/``intercept_``; a tree ensemble: one flat table of nodes
with per-tree offsets), stored as safetensors, and evaluated by the modules below, which reproduce
``predict_proba`` in float64 (tests compare them with scikit-learn itself on real images).

Both take pixel vectors exactly as scikit-learn saw them in training (pixels in [0,1], the opponent's card sets
mean 0 and std 1 so :class:`app.ml.model.ArenaModel`'s normalisation is the identity) and return log-probabilities
as logits, so ``softmax(logits)`` is the estimator's ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import Tensor, nn

LINEAR_KEYS = ("coef", "intercept")
FOREST_KEYS = ("feature", "threshold", "left", "right", "leaf_of_node", "leaf_proba", "roots", "max_depth")
# log(0) would be -inf; this floor is far below any probability a 10-class model distinguishes from 0.
LOG_FLOOR = 1e-30


def _require(state: Mapping[str, Tensor], keys: tuple[str, ...], what: str) -> None:
    missing = [k for k in keys if k not in state]
    extra = sorted(set(state) - set(keys))
    if missing or extra:
        raise ValueError(f"{what} checkpoint needs tensors {list(keys)}; missing {missing}, unexpected {extra}")


class PixelLogisticRegression(nn.Module):
    """Multinomial logistic regression: ``softmax(x @ coef.T + intercept)`` on the flattened pixels, in float64.

    Differentiable (it is a linear layer), so white-box attacks may use its exact gradient.
    """

    coef: Tensor
    intercept: Tensor

    def __init__(self, coef: Tensor, intercept: Tensor) -> None:
        super().__init__()
        if coef.ndim != 2 or intercept.shape != (coef.shape[0],):
            raise ValueError(
                f"coef must be (K,D) and intercept (K,), got {tuple(coef.shape)}, {tuple(intercept.shape)}"
            )
        self.register_buffer("coef", coef.to(torch.float64).contiguous())
        self.register_buffer("intercept", intercept.to(torch.float64).contiguous())

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor]) -> PixelLogisticRegression:
        _require(state, LINEAR_KEYS, "logistic regression")
        return cls(state["coef"], state["intercept"])

    def decision_function(self, x: Tensor) -> Tensor:
        return x.flatten(1).to(torch.float64) @ self.coef.T + self.intercept

    def predict_proba(self, x: Tensor) -> Tensor:
        return self.decision_function(x).softmax(1)

    def forward(self, x: Tensor) -> Tensor:
        return self.decision_function(x).log_softmax(1).to(x.dtype)


class PixelTreeEnsemble(nn.Module):
    """A forest of axis-aligned decision trees, evaluated for every tree at once, level by level.

    Nodes of all trees live in one table: ``feature`` (-1 for a leaf), ``threshold`` (go left when
    ``x[feature] <= threshold``), ``left``/``right`` (global node ids, -1 for a leaf), ``leaf_of_node`` (row of
    ``leaf_proba`` for a leaf, -1 otherwise) and ``roots`` (each tree's root id). ``leaf_proba`` holds each leaf's
    class probabilities exactly as the tree's ``predict_proba`` returns them, and the forest averages its trees.

    Thresholds are float32, rounded down from scikit-learn's float64: scikit-learn compares float32 pixels, and
    for a float32 ``x``, ``x <= t`` holds exactly when ``x <= round_down_to_float32(t)``, so no decision changes.
    The output is piecewise constant in the pixels (zero gradient almost everywhere), so the opponent is marked
    non-differentiable and only black-box and transfer attacks may be used on it.
    """

    feature: Tensor
    threshold: Tensor
    left: Tensor
    right: Tensor
    leaf_of_node: Tensor
    leaf_proba: Tensor
    roots: Tensor
    max_depth: Tensor

    def __init__(self, state: Mapping[str, Tensor]) -> None:
        super().__init__()
        _require(state, FOREST_KEYS, "tree ensemble")
        n = state["feature"].shape[0]
        for key in ("threshold", "left", "right", "leaf_of_node"):
            if state[key].shape != (n,):
                raise ValueError(
                    f"tree ensemble: {key} must have one entry per node ({n}), got {tuple(state[key].shape)}"
                )
        if state["leaf_proba"].ndim != 2 or state["roots"].ndim != 1 or state["max_depth"].numel() != 1:
            raise ValueError("tree ensemble: leaf_proba must be (L,K), roots (T,) and max_depth one number")
        self.register_buffer("feature", state["feature"].to(torch.int64))
        self.register_buffer("threshold", state["threshold"].to(torch.float32))
        self.register_buffer("left", state["left"].to(torch.int64))
        self.register_buffer("right", state["right"].to(torch.int64))
        self.register_buffer("leaf_of_node", state["leaf_of_node"].to(torch.int64))
        self.register_buffer("leaf_proba", state["leaf_proba"].to(torch.float64))
        self.register_buffer("roots", state["roots"].to(torch.int64))
        self.register_buffer("max_depth", state["max_depth"].to(torch.int64).reshape(()))
        leaves = self.feature < 0
        if bool((self.leaf_of_node[leaves] < 0).any()) or bool((self.left[~leaves] < 0).any()):
            raise ValueError("tree ensemble: every leaf needs a leaf_proba row and every split two children")

    @classmethod
    def from_state_dict(cls, state: Mapping[str, Tensor]) -> PixelTreeEnsemble:
        return cls(state)

    def storage_state(self) -> dict[str, Tensor]:
        """The compact dtypes the checkpoint stores (int16 features, int32 ids, float32 thresholds)."""
        return {
            "feature": self.feature.to(torch.int16).cpu(),
            "threshold": self.threshold.cpu(),
            "left": self.left.to(torch.int32).cpu(),
            "right": self.right.to(torch.int32).cpu(),
            "leaf_of_node": self.leaf_of_node.to(torch.int32).cpu(),
            "leaf_proba": self.leaf_proba.cpu(),
            "roots": self.roots.to(torch.int32).cpu(),
            "max_depth": self.max_depth.reshape(1).to(torch.int32).cpu(),
        }

    @property
    def n_trees(self) -> int:
        return int(self.roots.numel())

    def leaves(self, x: Tensor) -> Tensor:
        """The leaf row each sample reaches in each tree, shaped (B, T)."""
        flat = x.detach().flatten(1).to(torch.float32)
        node = self.roots.unsqueeze(0).expand(flat.shape[0], -1).contiguous()
        for _ in range(int(self.max_depth)):
            feature = self.feature[node]
            is_leaf = feature < 0
            if bool(is_leaf.all()):
                break
            value = flat.gather(1, feature.clamp_min(0))
            nxt = torch.where(value <= self.threshold[node], self.left[node], self.right[node])
            node = torch.where(is_leaf, node, nxt)
        return self.leaf_of_node[node]

    def predict_proba(self, x: Tensor) -> Tensor:
        # Tree by tree, in order, as scikit-learn accumulates them, so the float64 sums round the same way.
        per_tree = self.leaf_proba[self.leaves(x)]
        total = torch.zeros_like(per_tree[:, 0])
        for t in range(per_tree.shape[1]):
            total += per_tree[:, t]
        return total / self.n_trees

    def forward(self, x: Tensor) -> Tensor:
        return self.predict_proba(x).clamp_min(LOG_FLOOR).log().to(x.dtype)
