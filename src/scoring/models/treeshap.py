"""Fast exact TreeSHAP for XGBoost boosters: per-leaf tables built once per model.

XGBoost's ``pred_contribs`` (exact, path-dependent TreeSHAP) spends O(leaves x depth^2) per
tree on every row. Here the per-row work is moved to a one-off precomputation, in the
spirit of FastTreeSHAP v2 (Yang 2021, arXiv:2109.09847):

For a leaf ``l`` with value ``v``, let ``U`` be the distinct features on its path (``d`` of
them), ``z_j`` the share of the training cover that follows the path at the nodes splitting
on ``j`` (the product of child cover / parent cover over those nodes), and ``o_j`` = 1 when
the row satisfies every path condition on ``j`` (else 0). Path-dependent TreeSHAP gives the
leaf's share of feature ``i``'s Shapley value as

    phi_i = v (o_i - z_i) sum_{S subset of U - {i}} |S|! (d - |S| - 1)! / d!
                           prod_{j in S} o_j prod_{j in U - S - {i}} z_j

which depends on the row only through the ``d`` bits ``o``. So each leaf gets a table of
``2^d x d`` values (all bit patterns, every path feature), computed once when the booster is
loaded; a row's contributions are then table look-ups: for every node, the row's decision;
for every leaf, its bit pattern (all bits set, a bit cleared where the row leaves the path,
carried down the tree node by node, since a feature's bit number is fixed by its first
appearance from the root); and ``d`` additions. Two sibling leaves share one table indexed
by their parent's pattern and decision (one look-up instead of two). Summed over leaves
and trees this is exactly TreeSHAP (the same sum, reordered), the values XGBoost's
``pred_contribs`` returns, to floating-point rounding (XGBoost works in float32, this in
float64). The bias is the base margin plus each tree's cover-weighted mean leaf value.

Per row the work is O(nodes + sum of d over leaves) instead of O(leaves x depth^2); rows
are processed in blocks of ``BLOCK``, tree by tree, with the rows as the innermost loop, so
one tree's tables stay in cache and the loops vectorise.

Splits follow XGBoost's own rules (checked against ``pred_contribs`` in the tests):
numeric ``x < threshold`` goes left, compared in float32; a missing value takes the node's
default direction; a categorical split sends the categories in its set right and any other
valid category left, with invalid codes (negative, beyond the set) going left.

The per-row loop is compiled with numba (installed with shap) and runs rows in parallel
over ``n_threads``; without numba, :func:`tree_shap` falls back to ``pred_contribs``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import xgboost as xgb

MAX_TABLE_DEPTH = 16  # distinct features on one path; 2^16 x 16 table entries per leaf at most

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


class TreeShapError(ValueError):
    """A booster this module cannot explain (not a binary gbtree, or paths too deep)."""


@dataclass(frozen=True)
class TreeTables:
    """The precomputed model as flat arrays.

    Nodes (internal and leaves) of each tree are numbered in depth-first preorder (a parent
    before its children), globally across trees: ``tree_nodes[t]:tree_nodes[t+1]`` is tree
    ``t``. For each node: its parent's local number (-1 at the root), whether it is its
    parent's left child, and the bit of the parent's split feature among the path's distinct
    features (numbered by first appearance from the root, so the same for every leaf below);
    for internal nodes the split, for leaves (``node_leaf`` >= 0) the leaf's table.
    """

    n_features: int
    bias: float
    tree_nodes: IntArray
    node_parent: IntArray
    node_is_left: npt.NDArray[np.bool_]
    node_parent_bit: IntArray
    node_leaf: IntArray
    node_feature: IntArray
    node_threshold: npt.NDArray[np.float32]
    node_default_left: npt.NDArray[np.bool_]
    node_categorical: npt.NDArray[np.bool_]
    node_cat_start: IntArray  # into cat_right: a bitmap of the categories going right
    node_cat_size: IntArray
    cat_right: npt.NDArray[np.bool_]
    leaf_depth: IntArray  # distinct path features d
    leaf_pair: npt.NDArray[np.bool_]  # a pair of sibling leaves, indexed by their parent's decision too
    leaf_feature_start: IntArray  # into leaf_feature
    leaf_feature: IntArray
    leaf_table_start: IntArray  # into table; 2^d x d values per leaf, 2^(d+1) x d per pair
    table: FloatArray
    n_leaves: int


def _base_margin(learner: dict[str, Any]) -> float:
    raw = str(learner["learner_model_param"]["base_score"]).strip("[]")
    values = [float(v) for v in raw.split(",") if v.strip()]
    if len(values) != 1:
        raise TreeShapError(f"base_score {raw!r}: expected one value (a binary model)")
    objective = learner["objective"]["name"]
    if objective in ("binary:logistic", "reg:logistic", "binary:logitraw"):
        p = values[0]
        return values[0] if objective == "binary:logitraw" else math.log(p / (1.0 - p))
    raise TreeShapError(f"objective {objective!r}: expected binary:logistic")


def _shapley_weights(d: int) -> FloatArray:
    weights = [math.factorial(s) * math.factorial(d - s - 1) / math.factorial(d) for s in range(d)]
    return np.array(weights, dtype=np.float64)


def leaf_tables(values: FloatArray, zero: FloatArray) -> FloatArray:
    """Shapley tables of leaves with ``d`` distinct path features, shape ``(L, 2^d, d)``.

    ``values``: leaf values ``(L,)``; ``zero``: cover fractions ``z`` ``(L, d)``. Entry
    ``[l, p, k]`` is leaf ``l``'s share of the SHAP value of its ``k``-th path feature for a
    row whose satisfied-condition bits are ``p`` (bit ``k`` set: ``o_k`` = 1).
    """
    n_leaves, d = zero.shape
    patterns = np.arange(2**d)
    ones = ((patterns[:, None] >> np.arange(d)[None, :]) & 1).astype(np.float64)  # (P, d)
    # coef[l, p, k, s]: coefficient of t^s in prod_{j != k} (o_j t + z_j), the subsets S of
    # size s of the satisfied features other than k, weighted by the product of the others' z.
    coef = np.zeros((n_leaves, 2**d, d, d), dtype=np.float64)
    coef[..., 0] = 1.0
    for j in range(d):
        z_j = zero[:, j][:, None, None, None]
        o_j = ones[:, j][None, :, None, None]
        shifted = np.concatenate([np.zeros_like(coef[..., :1]), coef[..., :-1]], axis=-1)
        updated = z_j * coef + o_j * shifted
        skip = (np.arange(d) == j)[None, None, :, None]  # the factor for k itself is left out
        coef = np.where(skip, coef, updated)
    weighted = coef @ _shapley_weights(d)  # (L, P, d)
    return np.asarray(values[:, None, None] * (ones[None, :, :] - zero[:, None, :]) * weighted)


def build_tables(booster: xgb.Booster) -> TreeTables:
    """Parse the booster's JSON and precompute every leaf's table (once per model)."""
    model = json.loads(booster.save_raw(raw_format="json"))
    learner = model["learner"]
    gbm = learner["gradient_booster"]
    if gbm.get("name") != "gbtree" or int(learner["learner_model_param"].get("num_class", "0")) > 1:
        raise TreeShapError(f"booster {gbm.get('name')!r}: expected a binary gbtree model")
    trees = gbm["model"]["trees"]
    n_features = int(learner["learner_model_param"]["num_feature"])
    bias = _base_margin(learner)

    tree_nodes = [0]
    node_parent: list[int] = []
    node_is_left: list[bool] = []
    node_parent_bit: list[int] = []
    node_leaf: list[int] = []
    node_feature: list[int] = []
    node_threshold: list[float] = []
    node_default_left: list[bool] = []
    node_categorical: list[bool] = []
    node_cat_start: list[int] = []
    node_cat_size: list[int] = []
    cat_right: list[bool] = []
    # Table entries: a leaf, or two sibling leaves (values and cover fractions of both).
    leaf_value: list[tuple[float, ...]] = []
    leaf_features: list[list[int]] = []
    leaf_zero: list[tuple[list[float], ...]] = []
    leaf_bit: list[int] = []

    for tree in trees:
        left, right, cover = tree["left_children"], tree["right_children"], tree["sum_hessian"]
        categories = _categories(tree)
        local = 0
        # (node, parent's local number, is left child, parent's bit, path features, cover fractions)
        stack: list[tuple[int, int, bool, int, list[int], list[float]]] = [(0, -1, False, 0, [], [])]
        while stack:
            node, parent, is_left, parent_bit, features, zero = stack.pop()
            node_parent.append(parent)
            node_is_left.append(is_left)
            node_parent_bit.append(parent_bit)
            me = local
            local += 1
            if left[node] == -1:
                if len(features) > MAX_TABLE_DEPTH:
                    raise TreeShapError(
                        f"tree {tree['id']}: a path with {len(features)} distinct features; at most "
                        f"{MAX_TABLE_DEPTH} are supported"
                    )
                node_leaf.append(len(leaf_value))
                leaf_value.append((float(tree["split_conditions"][node]),))
                leaf_features.append(features)
                leaf_zero.append((zero,))
                leaf_bit.append(-1)
                node_feature.append(-1)
                node_threshold.append(0.0)
                node_default_left.append(False)
                node_categorical.append(False)
                node_cat_start.append(len(cat_right))
                node_cat_size.append(0)
                continue
            feature = int(tree["split_indices"][node])
            node_feature.append(feature)
            node_threshold.append(float(tree["split_conditions"][node]))
            node_default_left.append(bool(tree["default_left"][node]))
            is_cat = int(tree["split_type"][node]) == 1
            node_categorical.append(is_cat)
            right_set = categories.get(node, []) if is_cat else []
            size = max(right_set) + 1 if right_set else 0
            node_cat_start.append(len(cat_right))
            node_cat_size.append(size)
            bitmap = [False] * size
            for c in right_set:
                bitmap[c] = True
            cat_right.extend(bitmap)
            k = features.index(feature) if feature in features else len(features)
            child_features = features if k < len(features) else [*features, feature]
            children: list[tuple[int, bool, list[float]]] = []
            for child, went_left in ((right[node], False), (left[node], True)):  # left popped first
                fraction = cover[child] / cover[node] if cover[node] > 0 else 0.0
                child_zero = [*zero, 1.0] if k == len(zero) else list(zero)
                child_zero[k] *= fraction
                children.append((child, went_left, child_zero))
            if left[left[node]] == -1 and left[right[node]] == -1:
                # Both children are leaves: one table for the pair, indexed by this node's
                # decision as well, so a row does one look-up for both.
                if len(child_features) > MAX_TABLE_DEPTH:
                    raise TreeShapError(
                        f"tree {tree['id']}: a path with {len(child_features)} distinct features; "
                        f"at most {MAX_TABLE_DEPTH} are supported"
                    )
                node_leaf.append(len(leaf_value))
                leaf_value.append(
                    tuple(float(tree["split_conditions"][c]) for c in (left[node], right[node]))
                )
                leaf_features.append(child_features)
                leaf_zero.append((children[1][2], children[0][2]))
                leaf_bit.append(k)
                continue
            node_leaf.append(-1)
            for child, went_left, child_zero in children:
                stack.append((child, me, went_left, k, child_features, child_zero))
        tree_nodes.append(tree_nodes[-1] + local)

    depth = np.array([len(f) for f in leaf_features], dtype=np.int64)
    pair = np.array([b >= 0 for b in leaf_bit], dtype=np.bool_)
    table_sizes = (2 ** (depth + pair)) * depth
    leaf_table_start = np.concatenate([[0], np.cumsum(table_sizes)]).astype(np.int64)
    table = np.zeros(int(leaf_table_start[-1]), dtype=np.float64)
    expected = 0.0
    for d, is_pair in sorted({(int(d), bool(p)) for d, p in zip(depth, pair, strict=True)}):
        rows = np.flatnonzero((depth == d) & (pair == is_pair))
        for chunk in np.array_split(rows, max(1, len(rows) * 2**d * d * d // 2_000_000)):
            parts = []
            for side in range(2 if is_pair else 1):
                values = np.array([leaf_value[i][side] for i in chunk], dtype=np.float64)
                zc = np.array([leaf_zero[i][side] for i in chunk], dtype=np.float64).reshape(len(chunk), d)
                expected += float(np.sum(values * np.prod(zc, axis=1)))
                if d:
                    parts.append(leaf_tables(values, zc))
            if not d:
                continue
            tables = (
                _pair_tables(parts[0], parts[1], np.array([leaf_bit[i] for i in chunk]))
                if is_pair
                else parts[0]
            )
            flat = tables.reshape(len(chunk), -1)
            for i, leaf in enumerate(chunk):
                table[leaf_table_start[leaf] : leaf_table_start[leaf + 1]] = flat[i]
    leaf_feature_start = np.concatenate([[0], np.cumsum(depth)]).astype(np.int64)
    return TreeTables(
        n_features=n_features,
        bias=bias + expected,
        tree_nodes=np.array(tree_nodes, dtype=np.int64),
        node_parent=np.array(node_parent, dtype=np.int64),
        node_is_left=np.array(node_is_left, dtype=np.bool_),
        node_parent_bit=np.array(node_parent_bit, dtype=np.int64),
        node_leaf=np.array(node_leaf, dtype=np.int64),
        node_feature=np.array(node_feature, dtype=np.int64),
        node_threshold=np.array(node_threshold, dtype=np.float32),
        node_default_left=np.array(node_default_left, dtype=np.bool_),
        node_categorical=np.array(node_categorical, dtype=np.bool_),
        node_cat_start=np.array(node_cat_start, dtype=np.int64),
        node_cat_size=np.array(node_cat_size, dtype=np.int64),
        cat_right=np.array(cat_right, dtype=np.bool_),
        leaf_depth=depth,
        leaf_pair=pair,
        leaf_feature_start=leaf_feature_start,
        leaf_feature=np.array([f for fs in leaf_features for f in fs], dtype=np.int64),
        leaf_table_start=leaf_table_start,
        table=table,
        n_leaves=int(sum(len(v) for v in leaf_value)),
    )


def _pair_tables(left: FloatArray, right: FloatArray, bit: IntArray) -> FloatArray:
    """Tables of sibling leaf pairs, ``(L, 2^d, 2, d)``: by the parent's pattern, then its decision.

    At the parent the row's bit for the split feature still holds the earlier conditions on
    it; the decision (1 = left) clears it for the leaf the row does not reach.
    """
    patterns = np.arange(left.shape[1])[None, :]
    cleared = patterns & ~(1 << bit[:, None])  # (L, P)
    take = np.take_along_axis
    went_left = left + take(right, cleared[:, :, None], axis=1)
    went_right = take(left, cleared[:, :, None], axis=1) + right
    return np.stack([went_right, went_left], axis=2)


def _categories(tree: dict[str, Any]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for node, start, size in zip(
        tree["categories_nodes"], tree["categories_segments"], tree["categories_sizes"], strict=True
    ):
        out[int(node)] = [int(c) for c in tree["categories"][start : start + size]]
    return out


def feature_array(matrix: pd.DataFrame) -> npt.NDArray[np.float32]:
    """The matrix as XGBoost sees it: float32 values, category codes, NaN for missing."""
    x = np.empty((len(matrix), matrix.shape[1]), dtype=np.float32)
    categorical = [isinstance(dtype, pd.CategoricalDtype) for dtype in matrix.dtypes]
    numeric = [i for i, is_cat in enumerate(categorical) if not is_cat]
    if numeric:  # one conversion for all numeric columns
        x[:, numeric] = matrix.iloc[:, numeric].to_numpy(dtype=np.float32, na_value=np.nan)
    for i in (i for i, is_cat in enumerate(categorical) if is_cat):
        codes = matrix.iloc[:, i].cat.codes.to_numpy().astype(np.float32)
        codes[codes < 0] = np.nan
        x[:, i] = codes
    return x


_KERNEL: Any = None


def _kernel() -> Any:
    global _KERNEL
    if _KERNEL is None:
        _KERNEL = _compile()
    return _KERNEL


BLOCK = 128  # rows per parallel work item


def _compile() -> Any:
    import numba

    @numba.njit(parallel=True, cache=True, nogil=True)
    def shap_rows(  # pragma: no cover - compiled
        x: Any,
        out: Any,
        tree_nodes: Any,
        node_parent: Any,
        node_is_left: Any,
        node_parent_bit: Any,
        node_leaf: Any,
        node_feature: Any,
        node_threshold: Any,
        node_default_left: Any,
        node_categorical: Any,
        node_cat_start: Any,
        node_cat_size: Any,
        cat_right: Any,
        leaf_depth: Any,
        leaf_pair: Any,
        leaf_feature_start: Any,
        leaf_feature: Any,
        leaf_table_start: Any,
        table: Any,
    ) -> None:
        n_rows, n_features = x.shape
        n_trees = tree_nodes.shape[0] - 1
        max_nodes = 1
        for t in range(n_trees):
            max_nodes = max(max_nodes, tree_nodes[t + 1] - tree_nodes[t])
        n_blocks = (n_rows + BLOCK - 1) // BLOCK
        # Blocks of rows; inside a block, tree by tree and node by node with the rows as the
        # innermost loop (the compiler vectorises it), the tree's tables staying in cache.
        for blk in numba.prange(n_blocks):
            lo = blk * BLOCK
            b = min(n_rows, lo + BLOCK) - lo
            xt = np.empty((n_features, b), dtype=np.float32)
            for j in range(b):
                for f in range(n_features):
                    xt[f, j] = x[lo + j, f]
            acc = np.zeros((n_features, b), dtype=np.float64)
            pattern = np.empty((max_nodes, b), dtype=np.int32)
            go_left = np.empty((max_nodes, b), dtype=np.bool_)
            index = np.empty(b, dtype=np.int64)
            for t in range(n_trees):
                first = tree_nodes[t]
                for i in range(tree_nodes[t + 1] - first):
                    g = first + i
                    if i == 0:
                        for j in range(b):
                            pattern[0, j] = -1  # every bit set
                    else:
                        parent = node_parent[g]
                        cleared = np.int32(~(1 << node_parent_bit[g]))
                        want = node_is_left[g]
                        for j in range(b):
                            keep = go_left[parent, j] == want
                            pattern[i, j] = pattern[parent, j] & (np.int32(-1) if keep else cleared)
                    f = node_feature[g]
                    if f >= 0:
                        default = node_default_left[g]
                        if node_categorical[g]:
                            start = node_cat_start[g]
                            size = node_cat_size[g]
                            for j in range(b):
                                v = xt[f, j]
                                if np.isnan(v):
                                    go_left[i, j] = default
                                else:
                                    code = np.int64(v)
                                    go_left[i, j] = not (v >= 0 and code < size and cat_right[start + code])
                        else:
                            threshold = node_threshold[g]
                            for j in range(b):
                                v = xt[f, j]
                                go_left[i, j] = default if np.isnan(v) else v < threshold
                    leaf = node_leaf[g]
                    if leaf >= 0:
                        d = leaf_depth[leaf]
                        if d == 0:
                            continue
                        base = leaf_table_start[leaf]
                        mask = np.int32((1 << d) - 1)
                        if leaf_pair[leaf]:
                            for j in range(b):
                                slot = 2 * np.int64(pattern[i, j] & mask) + np.int64(go_left[i, j])
                                index[j] = base + slot * d
                        else:
                            for j in range(b):
                                index[j] = base + np.int64(pattern[i, j] & mask) * d
                        fs = leaf_feature_start[leaf]
                        for k in range(d):
                            fk = leaf_feature[fs + k]
                            for j in range(b):
                                acc[fk, j] += table[index[j] + k]
            for j in range(b):
                for f in range(n_features):
                    out[lo + j, f] = acc[f, j]

    return shap_rows


def tree_shap_tables(
    tables: TreeTables, matrix: pd.DataFrame | npt.NDArray[np.float32], n_threads: int | None = None
) -> npt.NDArray[np.float64]:
    """TreeSHAP values ``(n_rows, n_features + 1)`` (last column: bias) from precomputed tables.

    ``matrix``: the feature matrix, or its :func:`feature_array` (float32, category codes).
    """
    import numba

    x = (
        np.ascontiguousarray(matrix, dtype=np.float32)
        if isinstance(matrix, np.ndarray)
        else feature_array(matrix)
    )
    if x.shape[1] != tables.n_features:
        raise TreeShapError(f"matrix has {x.shape[1]} columns; the booster has {tables.n_features} features")
    out = np.zeros((len(x), tables.n_features + 1), dtype=np.float64)
    kernel = _kernel()
    previous = numba.get_num_threads()
    if n_threads is not None:
        numba.set_num_threads(max(1, min(n_threads, int(getattr(numba.config, "NUMBA_NUM_THREADS", 1)))))
    try:
        kernel(
            x,
            out,
            tables.tree_nodes,
            tables.node_parent,
            tables.node_is_left,
            tables.node_parent_bit,
            tables.node_leaf,
            tables.node_feature,
            tables.node_threshold,
            tables.node_default_left,
            tables.node_categorical,
            tables.node_cat_start,
            tables.node_cat_size,
            tables.cat_right,
            tables.leaf_depth,
            tables.leaf_pair,
            tables.leaf_feature_start,
            tables.leaf_feature,
            tables.leaf_table_start,
            tables.table,
        )
    finally:
        numba.set_num_threads(previous)
    out[:, -1] = tables.bias
    return out


def tree_shap(
    booster: xgb.Booster, matrix: pd.DataFrame, n_threads: int | None = None, tables: TreeTables | None = None
) -> FloatArray:
    """Exact TreeSHAP of a binary XGBoost booster on the margin scale, bias last.

    The same values as ``booster.predict(DMatrix(matrix), pred_contribs=True)``. Pass the
    booster's :func:`build_tables` to skip rebuilding them; without numba this falls back to
    ``pred_contribs``.
    """
    try:
        import numba  # noqa: F401
    except ImportError:  # pragma: no cover - numba comes with shap
        dmatrix = xgb.DMatrix(matrix, enable_categorical=True, nthread=n_threads or 1)
        return np.asarray(booster.predict(dmatrix, pred_contribs=True), dtype=np.float64)
    return tree_shap_tables(tables if tables is not None else build_tables(booster), matrix, n_threads)


def float64_margin(booster: xgb.Booster, matrix: pd.DataFrame) -> FloatArray:
    """The booster's margin summed in float64: base margin plus each tree's leaf value.

    The leaves are XGBoost's own (``pred_leaf``), so this is the margin XGBoost computes,
    without its float32 accumulation; TreeSHAP values add up to it to float64 rounding.
    """
    learner = json.loads(booster.save_raw(raw_format="json"))["learner"]
    trees = learner["gradient_booster"]["model"]["trees"]
    dmatrix = xgb.DMatrix(matrix, enable_categorical=True, nthread=1)
    leaves = np.asarray(booster.predict(dmatrix, pred_leaf=True), dtype=np.int64).reshape(len(matrix), -1)
    total = np.full(len(matrix), _base_margin(learner), dtype=np.float64)
    for t, tree in enumerate(trees):
        total += np.asarray(tree["split_conditions"], dtype=np.float64)[leaves[:, t]]
    return total
