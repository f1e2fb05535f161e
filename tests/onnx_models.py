"""Small ONNX graphs built for tests (good and bad saliency models) and the card of the shipped u2netp."""
from __future__ import annotations

import copy
import json
from pathlib import Path

import numpy as np
from onnx import TensorProto, helper, numpy_helper

from probekit.models.u2net import weights_path

# The card that describes the built-in u2netp exactly.
U2NETP_CARD = {
    "summary": "U²-Net-p registered by an organizer", "licence": "Apache-2.0",
    "paper": "Qin et al., U²-Net, Pattern Recognition 2020",
    "input": {"size": [320, 320], "resize": "lanczos", "channels": "RGB", "layout": "NCHW",
              "scale": "max", "mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]},
    "output": {"index": 0, "normalize": "minmax", "blur_sigma": 2.0},
}
# A dynamic-size card for the tiny convolutional model.
TINY_CARD = {
    "summary": "one 3×3 convolution and a sigmoid", "licence": "CC0", "paper": "none",
    "input": {"size": "dynamic", "native": [64, 64], "resize": "bilinear", "channels": "RGB", "layout": "NCHW",
              "scale": 0.00392156862745098, "mean": [0.5, 0.5, 0.5], "std": [0.25, 0.25, 0.25]},
    "output": {"index": 0, "normalize": "none", "blur_sigma": 1.0},
}


def card(base: dict, **changes) -> dict:
    """A deep copy of `base` with changes by path, `__` between levels (`input__mean=None` deletes it)."""
    result = copy.deepcopy(base)
    for path, value in changes.items():
        *parents, last = path.split("__")
        node = result
        for part in parents:
            node = node[part]
        if value is None:
            node.pop(last, None)
        else:
            node[last] = value
    return result


def write(path: Path, data) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else json.dumps(data).encode())
    return path


def _model(nodes, inputs, outputs, initializers=()) -> bytes:
    graph = helper.make_graph(nodes, "test", inputs, outputs, list(initializers))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)])
    model.ir_version = 8
    return model.SerializeToString()


def tiny_conv(channels: int = 3, size=("h", "w"), seed: int = 0) -> bytes:
    """x (1, C, H, W) → 3×3 Conv (C → 1) → Sigmoid: a valid, fully convolutional saliency model."""
    weights = np.random.default_rng(seed).normal(0, 0.5, (1, channels, 3, 3)).astype(np.float32)
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, channels, *size])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, *size])
    nodes = [helper.make_node("Conv", ["x", "w"], ["c"], pads=[1, 1, 1, 1], name="conv"),
             helper.make_node("Sigmoid", ["c"], ["y"], name="sigmoid")]
    return _model(nodes, [x], [y], [numpy_helper.from_array(weights, "w")])


def rank2_input() -> bytes:
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    return _model([helper.make_node("Relu", ["x"], ["y"])], [x], [y])


def vector_output() -> bytes:
    """Reduces the image to one number per channel: not a map."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])
    return _model([helper.make_node("ReduceMean", ["x", "axes"], ["y"], keepdims=0)], [x], [y],
                  [numpy_helper.from_array(np.array([2, 3], dtype=np.int64), "axes")])


def random_output() -> bytes:
    """Adds fresh noise on every run: non-deterministic."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "h", "w"])
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("RandomUniformLike", ["m"], ["r"]),
             helper.make_node("Add", ["m", "r"], ["y"])]
    return _model(nodes, [x], [y], [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes")])


def u2netp_bytes() -> bytes:
    return weights_path().read_bytes()



def looping(*, white_only: bool = False) -> bytes:
    """A Loop that never ends: on every input, or (white_only) only when the input has a white pixel.

    The mean map of the input comes out when the loop does not run (a valid, fast model otherwise)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "h", "w"])
    body = helper.make_graph(
        [helper.make_node("Identity", ["c"], ["c_out"]), helper.make_node("Identity", ["v"], ["v_out"])], "body",
        [helper.make_tensor_value_info("i", TensorProto.INT64, []), helper.make_tensor_value_info("c", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v", TensorProto.FLOAT, None)],
        [helper.make_tensor_value_info("c_out", TensorProto.BOOL, []),
         helper.make_tensor_value_info("v_out", TensorProto.FLOAT, None)])
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("ReduceMax", ["x"], ["top"], keepdims=0),
             helper.make_node("GreaterOrEqual", ["top", "threshold"], ["spin"]),
             helper.make_node("Loop", ["trips", "spin", "m"], ["y"], body=body)]
    # TINY_CARD's input: (pixel/255 - 0.5) / 0.25, so white is 2.0 on every channel
    threshold = np.array(1.99 if white_only else -1e9, dtype=np.float32)
    return _model(nodes, [x], [y], [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
                                    numpy_helper.from_array(np.array(2**62, dtype=np.int64), "trips"),
                                    numpy_helper.from_array(threshold, "threshold")])


def nan_on_white() -> bytes:
    """sqrt(1.99 - the channel mean): a fine map, except NaN where a pixel is white (2.0 after TINY_CARD's scaling)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, "h", "w"])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, "h", "w"])
    nodes = [helper.make_node("ReduceMean", ["x", "axes"], ["m"], keepdims=1),
             helper.make_node("Sub", ["limit", "m"], ["d"]),
             helper.make_node("Sqrt", ["d"], ["y"])]
    return _model(nodes, [x], [y], [numpy_helper.from_array(np.array([1], dtype=np.int64), "axes"),
                                    numpy_helper.from_array(np.array(1.99, dtype=np.float32), "limit")])
