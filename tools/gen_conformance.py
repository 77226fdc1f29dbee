#!/usr/bin/env python3
"""Generates tests/conformance/cases.json: golden pooling inputs and outputs from frameworks that
no one here wrote, for tests/conformance.rs.

Sources:
  * onnx-node:      the ONNX backend node tests shipped in the `onnx` 1.22.0 wheel (1.23 no
                    longer ships the data): MaxPool, AveragePool, LpPool, Global*Pool.
  * onnx-pytorch:   the `pytorch-converted` / `pytorch-operator` tests in the same wheel, whose
                    outputs were computed by PyTorch.
  * onnxruntime:    random configurations (seeded) run through onnxruntime's CPU kernels.

Set-up and run (not needed by the tests, which read the committed JSON):
    pip install onnx==1.22.0 onnxruntime numpy
    python3 tools/gen_conformance.py

Floats are stored as base64 of their little-endian f32 bytes, so that the data is exact (infinities
included) and small; inputs larger than CROP_ABOVE elements are cut into two corner crops whose
outputs are slices of the framework's output (see corner_crops). Where a source is known to differ from the contract in ../shared/design.md, the case
is left out or adjusted, and the reason is printed:
  * onnxruntime sizes SAME_* pads without dilation, so dilated same-padding cases are given to it
    with the explicit pads the contract computes (the case still says `same_upper`);
  * onnxruntime returns -FLT_MAX rather than -inf for an all-(-inf) window, so such windows are
    never generated;
  * node tests whose windows hold only padding (empty windows) are rejected by the contract and
    recorded as expected errors.
"""

import base64
import json
import math
import os
import sys

import numpy as np
import onnx
from onnx import helper, numpy_helper, TensorProto

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "conformance", "cases.json")
POOL_OPS = {
    "MaxPool": ("max", False),
    "AveragePool": ("avg", False),
    "LpPool": ("lp", False),
    "GlobalMaxPool": ("max", True),
    "GlobalAveragePool": ("avg", True),
    "GlobalLpPool": ("lp", True),
}


def bits(array):
    """Little-endian f32 bytes, base64: exact (infinities and NaN payloads included) and compact."""
    raw = np.ascontiguousarray(array, dtype="<f4").tobytes()
    return base64.b64encode(raw).decode("ascii")


def unbits(text, shape):
    return np.frombuffer(base64.b64decode(text), dtype="<f4").reshape(shape)


def contract_output_size(n, k, s, d, pb, pe, ceil):
    ek = d * (k - 1) + 1
    if ceil:
        out = (n + pb + pe - ek + s - 1) // s + 1
        if (out - 1) * s >= n + pb:
            out -= 1
    else:
        out = (n + pb + pe - ek) // s + 1
    return out


def same_pads(n, k, s, d, lower):
    ek = d * (k - 1) + 1
    out = -(-n // s)
    total = max((out - 1) * s + ek - n, 0)
    small = total // 2
    return (total - small, small) if lower else (small, total - small)


def case_from_node(name, source, node, inputs, outputs):
    """A case dict from one pooling node and its data, or None if it is out of scope."""
    op, is_global = POOL_OPS[node.op_type]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    x = inputs[0]
    if x.dtype != np.float32:
        print(f"skip {name}: dtype {x.dtype}", file=sys.stderr)
        return None
    rank = x.ndim - 2
    case = {
        "name": name,
        "source": source,
        "op": op,
        "global": is_global,
        "input_shape": list(x.shape),
    }
    if not is_global:
        auto_pad = attrs.get("auto_pad", b"NOTSET")
        auto_pad = auto_pad.decode() if isinstance(auto_pad, bytes) else auto_pad
        case["kernel"] = list(attrs["kernel_shape"])
        case["strides"] = list(attrs.get("strides", [1] * rank))
        case["dilations"] = list(attrs.get("dilations", [1] * rank))
        case["padding"] = {
            "NOTSET": "explicit",
            "VALID": "valid",
            "SAME_UPPER": "same_upper",
            "SAME_LOWER": "same_lower",
        }[auto_pad]
        case["pads"] = list(attrs.get("pads", [0] * (2 * rank)))
        case["ceil_mode"] = bool(attrs.get("ceil_mode", 0))
    if op == "avg":
        case["count_include_pad"] = bool(attrs.get("count_include_pad", 0))
    if op == "lp":
        case["p"] = float(attrs.get("p", 2))
    if op == "max" and attrs.get("storage_order", 0) != 0:
        case["storage_order"] = 1
    case["output_shape"] = list(outputs[0].shape)
    case["input"] = x
    case["output"] = outputs[0]
    if len(outputs) > 1:
        case["indices"] = outputs[1].astype(np.int64).ravel().tolist()
    return case


TOO_LARGE = {
    "test_MaxPool2d_stride_padding_dilation": "1000x1000 input whose 591x791-element windows make "
    "even one output need ~470k inputs; test_MaxPool1d_stride_padding_dilation and the "
    "onnxruntime cases cover stride + padding + dilation",
}
# Node tests whose expected output was typed in by hand to 4 decimals: an absolute tolerance of
# one unit of that last digit (channel 1's 0.2841 is 2.5564 / 9 = 0.28404 misrounded). The divisor
# under test is still decided: 9 (the taps inside the padded input) gives 0.1511, 4 would give 0.34.
HAND_ROUNDED = {"test_averagepool_2d_ceil_last_window_starts_on_pad": 1e-4}
CROP_ABOVE = 20000  # input elements; larger cases are cut into corner crops to keep the data small
CROP_OUTPUTS = 5    # outputs kept per cropped axis


def effective_pads(case):
    """The case's per-axis (begin, end) pads as the contract resolves them."""
    rank = len(case["input_shape"]) - 2
    pads = []
    for i in range(rank):
        n, k = case["input_shape"][2 + i], case["kernel"][i]
        s, d = case["strides"][i], case["dilations"][i]
        mode = case["padding"]
        if mode == "explicit":
            pads.append((case["pads"][i], case["pads"][i + rank]))
        elif mode == "valid":
            pads.append((0, 0))
        else:
            pads.append(same_pads(n, k, s, d, mode == "same_lower"))
    return pads


def corner_crops(case):
    """Cuts a large case into a begin-corner and an end-corner crop whose outputs are slices of
    the original output: the crop's input is exactly what those windows read, its pads are the
    original pads on the corner's side and none on the cut side, so every window is unchanged."""
    if case["global"] or "indices" in case or case["input"].size <= CROP_ABOVE:
        return [case]
    rank = len(case["input_shape"]) - 2
    pads = effective_pads(case)
    if all(out <= 2 * CROP_OUTPUTS for out in case["output_shape"][2:]):
        return [case]
    crops = []
    for corner in ("begin", "end"):
        in_slices, out_slices, new_pads = [slice(None)] * 2, [slice(None)] * 2, [None] * rank
        ceil = case["ceil_mode"] and corner == "end"
        for i in range(rank):
            n, k = case["input_shape"][2 + i], case["kernel"][i]
            s, d = case["strides"][i], case["dilations"][i]
            pb, pe = pads[i]
            ek = d * (k - 1) + 1
            out = case["output_shape"][2 + i]
            m = CROP_OUTPUTS
            if out <= 2 * m:
                in_slices.append(slice(None)); out_slices.append(slice(None)); new_pads[i] = (pb, pe)
                continue
            if corner == "begin":
                stop = (m - 1) * s - pb + ek
                assert stop <= n
                in_slices.append(slice(0, stop)); out_slices.append(slice(0, m)); new_pads[i] = (pb, 0)
                assert contract_output_size(stop, k, s, d, pb, 0, False) == m
            else:
                start = (out - m) * s - pb
                assert start >= 0
                in_slices.append(slice(start, n)); out_slices.append(slice(out - m, out))
                new_pads[i] = (0, pe)
                assert contract_output_size(n - start, k, s, d, 0, pe, ceil) == m
        crop = dict(case)
        crop["name"] = f"{case['name']}_{corner}_crop"
        crop["input"] = case["input"][tuple(in_slices)]
        crop["output"] = case["output"][tuple(out_slices)]
        crop["input_shape"] = list(crop["input"].shape)
        crop["output_shape"] = list(crop["output"].shape)
        crop["padding"] = "explicit"
        crop["pads"] = [p[0] for p in new_pads] + [p[1] for p in new_pads]
        crop["ceil_mode"] = ceil
        crops.append(crop)
    return crops


def encode(case):
    case = dict(case)
    case["input"] = bits(case["input"])
    case["output"] = bits(case["output"])
    return case


def load_pb(path):
    tensor = onnx.TensorProto()
    with open(path, "rb") as f:
        tensor.ParseFromString(f.read())
    return numpy_helper.to_array(tensor)


def onnx_wheel_cases():
    root = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
    cases = []
    for group, source in [("node", "onnx-node"), ("pytorch-converted", "onnx-pytorch"),
                          ("pytorch-operator", "onnx-pytorch")]:
        folder = os.path.join(root, group)
        for name in sorted(os.listdir(folder)):
            model_path = os.path.join(folder, name, "model.onnx")
            if not os.path.exists(model_path):
                continue
            model = onnx.load(model_path)
            nodes = list(model.graph.node)
            wrapped = [n.op_type for n in nodes[:1] + nodes[2:]] == ["Unsqueeze", "Squeeze"]
            if len(nodes) == 3 and wrapped and nodes[1].op_type in POOL_OPS:
                # PyTorch exports 1-D pooling as Unsqueeze -> 2-D pool -> Squeeze: the reshapes
                # move no data, so the 2-D pool's input and output are the data reshaped.
                shapes = {v.name: [d.dim_value for d in v.type.tensor_type.shape.dim]
                          for v in onnx.shape_inference.infer_shapes(model).graph.value_info}
                pool = nodes[1]
                reshape = [shapes[pool.input[0]], shapes[pool.output[0]]]
                nodes = [pool]
            else:
                reshape = None
            if len(nodes) != 1 or nodes[0].op_type not in POOL_OPS:
                if any(n.op_type in POOL_OPS for n in nodes):
                    print(f"skip {name}: {[n.op_type for n in nodes]} is not a lone pooling node",
                          file=sys.stderr)
                continue
            data = os.path.join(folder, name, "test_data_set_0")
            n_in = len([f for f in os.listdir(data) if f.startswith("input_")])
            n_out = len([f for f in os.listdir(data) if f.startswith("output_")])
            inputs = [load_pb(os.path.join(data, f"input_{i}.pb")) for i in range(n_in)]
            outputs = [load_pb(os.path.join(data, f"output_{i}.pb")) for i in range(n_out)]
            if reshape is not None:
                inputs = [inputs[0].reshape(reshape[0])]
                outputs = [outputs[0].reshape(reshape[1])]
            if name in TOO_LARGE:
                print(f"skip {name}: {TOO_LARGE[name]}", file=sys.stderr)
                continue
            case = case_from_node(name, source, nodes[0], inputs, outputs)
            if case is not None:
                if name in HAND_ROUNDED:
                    case["abs_tolerance"] = HAND_ROUNDED[name]
                cases.append(case)
    return cases


def run_ort(node_kwargs, x, n_outputs, opset=22):
    import onnxruntime as ort

    out_names = ["Y", "I"][:n_outputs]
    node = helper.make_node(inputs=["X"], outputs=out_names, **node_kwargs)
    outputs = [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)]
    if n_outputs > 1:
        outputs.append(helper.make_tensor_value_info("I", TensorProto.INT64, None))
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info(
        "X", TensorProto.FLOAT, list(x.shape))], outputs)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    model.ir_version = 10
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"X": x})


def random_input(rng, shape):
    x = rng.standard_normal(shape).astype(np.float32)
    # Ties: round a third of the values to a coarse grid so that equal maxima occur.
    mask = rng.random(shape) < 0.33
    x[mask] = np.round(x[mask] * 2) / 2
    # A few infinities (never enough to fill a window with -inf, see the module doc).
    x[rng.random(shape) < 0.01] = np.inf
    x[rng.random(shape) < 0.01] = -np.inf
    # Some all-negative planes: max must stay negative next to padding.
    if rng.random() < 0.3:
        x = -np.abs(x) - 0.5
    return x


def ort_cases(count, seed):
    rng = np.random.default_rng(seed)
    cases = []
    while len(cases) < count:
        rank = int(rng.integers(1, 4))
        op = ["max", "avg", "lp"][int(rng.integers(0, 3))]
        spatial = [int(rng.integers(1, 10 if rank == 3 else 14)) for _ in range(rank)]
        shape = [int(rng.integers(1, 3)), int(rng.integers(1, 5))] + spatial
        kernel = [int(rng.integers(1, 4)) for _ in range(rank)]
        strides = [int(rng.integers(1, 4)) for _ in range(rank)]
        dilations = [int(rng.integers(1, 3)) for _ in range(rank)]
        if op == "avg" and rng.random() < 0.5:
            dilations = [1] * rank
        padding = ["explicit", "explicit", "valid", "same_upper", "same_lower"][int(rng.integers(0, 5))]
        ceil = padding == "explicit" and rng.random() < 0.4
        if padding == "explicit":
            # onnxruntime requires pads < kernel.
            pads = [int(rng.integers(0, k)) for k in kernel] + [int(rng.integers(0, k)) for k in kernel]
        elif padding == "valid":
            pads = [0] * (2 * rank)
        else:
            pb_pe = [same_pads(n, k, s, d, padding == "same_lower")
                     for n, k, s, d in zip(spatial, kernel, strides, dilations)]
            pads = [p[0] for p in pb_pe] + [p[1] for p in pb_pe]
        # Keep only configurations the contract accepts: a valid output and no empty window.
        ok = True
        for i in range(rank):
            n, k, s, d = spatial[i], kernel[i], strides[i], dilations[i]
            pb, pe = pads[i], pads[i + rank]
            out = contract_output_size(n, k, s, d, pb, pe, ceil)
            if out < 1:
                ok = False
                break
            for o in range(out):
                st = o * s - pb
                if not any(0 <= st + j * d < n for j in range(k)):
                    ok = False
            if padding in ("same_upper", "same_lower") and out != -(-n // s):
                ok = False
        if not ok:
            continue
        x = random_input(rng, shape)
        kwargs = {"kernel_shape": kernel, "strides": strides, "pads": pads}
        if ceil:
            kwargs["ceil_mode"] = 1
        if op == "max":
            op_type, n_out = "MaxPool", 2
            kwargs["dilations"] = dilations
            if rank == 2 and rng.random() < 0.3:
                kwargs["storage_order"] = 1
        elif op == "avg":
            op_type, n_out = "AveragePool", 1
            kwargs["dilations"] = dilations
            kwargs["count_include_pad"] = int(rng.integers(0, 2))
        else:
            op_type, n_out = "LpPool", 1
            kwargs["dilations"] = dilations
            kwargs["p"] = int(rng.integers(1, 4))
            x = np.where(np.isfinite(x), x, 0).astype(np.float32)
        try:
            results = run_ort(dict(op_type=op_type, **kwargs), x, n_out)
        except Exception as e:  # an op/attribute combination onnxruntime does not implement
            print(f"onnxruntime refused {op_type} {kwargs}: {e}".splitlines()[0], file=sys.stderr)
            continue
        node = helper.make_node(op_type, ["X"], ["Y"], **kwargs)
        case = case_from_node(f"ort_{len(cases):03}_{op_type}_{rank}d", "onnxruntime", node, [x],
                              results)
        case["padding"] = padding  # the contract computes the same pads itself
        if padding != "explicit":
            case["pads"] = [0] * (2 * rank)
        cases.append(case)
    return cases


def ort_global_cases(seed):
    rng = np.random.default_rng(seed)
    cases = []
    for i, (op_type, rank) in enumerate([("GlobalMaxPool", 1), ("GlobalMaxPool", 3),
                                         ("GlobalAveragePool", 2), ("GlobalAveragePool", 3),
                                         ("GlobalLpPool", 2)]):
        shape = [2, 3] + [int(rng.integers(1, 7)) for _ in range(rank)]
        x = random_input(rng, shape)
        if op_type == "GlobalLpPool":
            x = np.where(np.isfinite(x), x, 0).astype(np.float32)
        # onnxruntime implements GlobalLpPool only at its first opset.
        results = run_ort(dict(op_type=op_type), x, 1, opset=2 if op_type == "GlobalLpPool" else 22)
        node = helper.make_node(op_type, ["X"], ["Y"])
        cases.append(case_from_node(f"ort_global_{i}_{op_type}_{rank}d", "onnxruntime", node, [x],
                                    results))
    return cases


def main():
    cases = onnx_wheel_cases() + ort_cases(120, seed=20261128) + ort_global_cases(seed=7)
    cases = [encode(crop) for case in cases for crop in corner_crops(case)]
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    import onnxruntime
    doc = {
        "about": "Golden pooling data; regenerate with tools/gen_conformance.py. Float arrays are base64 of little-endian f32 bytes.",
        "onnx": onnx.__version__,
        "onnxruntime": onnxruntime.__version__,
        "cases": cases,
    }
    with open(OUT, "w") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.write("\n")
    by_source = {}
    for c in cases:
        by_source[c["source"]] = by_source.get(c["source"], 0) + 1
    print(f"wrote {len(cases)} cases to {OUT}: {by_source}")


if __name__ == "__main__":
    main()
