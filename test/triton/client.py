"""Drives Fogline's edge with NVIDIA's own Triton HTTP client (tritonclient.http), as a user would.

Usage: .venv/bin/python test/triton/client.py <edge url> [--model cifar10]

Covers health, server/model metadata, the Triton model config, statistics and repository index,
inference of FP32 batches of 1 and 64 and of BYTES images (the PNG test vectors of
models/<model>/testvectors.json) in both the binary tensor data extension (the client's default)
and JSON, and the error paths, which must raise InferenceServerException with a clean message.
Prints one line per check and exits non-zero at the first failure (test/e2e/triton.test.ts runs
it against `npm start`).
"""

from __future__ import annotations

import argparse
import base64
import json
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, TypedDict
from urllib.parse import urlparse

import numpy as np
import numpy.typing as npt
import tritonclient.http as httpclient  # type: ignore[import-untyped]  # ships no type hints
from tritonclient.utils import InferenceServerException  # type: ignore[import-untyped]

ROOT = Path(__file__).resolve().parents[2]
OUTPUTS = ("probabilities", "exit_point", "entropy")
BATCH = 64

Floats = npt.NDArray[np.float32]


class Vector(TypedDict):
    """One entry of models/<model>/testvectors.json (the fields used here)."""

    name: str
    contentType: str
    imageBase64: str
    input: list[float]
    exitLogits: list[float]
    entropy: float


def load_vectors(model: str) -> list[Vector]:
    with open(ROOT / "models" / model / "testvectors.json", encoding="utf-8") as f:
        vectors: list[Vector] = json.load(f)["vectors"]
    return vectors


def softmax(logits: npt.ArrayLike) -> npt.NDArray[np.float64]:
    x = np.asarray(logits, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    p: npt.NDArray[np.float64] = e / e.sum(axis=-1, keepdims=True)
    return p


def check(cond: bool, what: str) -> None:
    if not cond:
        raise AssertionError(what)


class Checks:
    """The checks against one edge; each `run` prints `ok <name>` or raises."""

    def __init__(self, url: str, model: str) -> None:
        parsed = urlparse(url)
        self.client = httpclient.InferenceServerClient(url=parsed.netloc or url, ssl=parsed.scheme == "https")
        self.model = model
        self.vectors = load_vectors(model)
        self.pngs = [v for v in self.vectors if v["contentType"] == "image/png"]
        meta: dict[str, Any] = self.client.get_model_metadata(model)
        fp32 = next(t for t in meta["inputs"] if t["datatype"] == "FP32")
        self.fp32_name: str = fp32["name"]
        self.chw: list[int] = [int(d) for d in fp32["shape"][1:]]
        self.bytes_name: str = next(t["name"] for t in meta["inputs"] if t["datatype"] == "BYTES")
        self.failed = 0

    def run(self, name: str, fn: Callable[[], None]) -> None:
        try:
            fn()
        except Exception as e:  # report every check, then fail
            self.failed += 1
            print(f"FAIL {name}: {type(e).__name__}: {e}", flush=True)
        else:
            print(f"ok   {name}", flush=True)

    # health and metadata

    def health(self) -> None:
        check(self.client.is_server_live(), "server not live")
        check(self.client.is_server_ready(), "server not ready")
        check(self.client.is_model_ready(self.model), "model not ready")

    def metadata(self) -> None:
        server: dict[str, Any] = self.client.get_server_metadata()
        check(server["name"] == "fogline", f"server metadata: {server}")
        check("binary_tensor_data" in server["extensions"], f"extensions: {server['extensions']}")
        meta: dict[str, Any] = self.client.get_model_metadata(self.model)
        check(meta["name"] == self.model, f"model metadata: {meta}")
        check({o["name"] for o in meta["outputs"]} == set(OUTPUTS), f"outputs: {meta['outputs']}")

    def config(self) -> None:
        cfg: dict[str, Any] = self.client.get_model_config(self.model)
        check(cfg["name"] == self.model and cfg["max_batch_size"] == BATCH, f"config: {cfg}")
        image = next(i for i in cfg["input"] if i["name"] == self.fp32_name)
        check(image["data_type"] == "TYPE_FP32" and image["dims"] == self.chw, f"config input: {image}")
        probs = next(o for o in cfg["output"] if o["name"] == "probabilities")
        check(probs["data_type"] == "TYPE_FP32", f"config output: {probs}")

    def stats_and_index(self) -> None:
        stats: dict[str, Any] = self.client.get_inference_statistics(self.model)
        check([s["name"] for s in stats["model_stats"]] == [self.model], f"stats: {stats}")
        check("success" in stats["model_stats"][0]["inference_stats"], f"stats: {stats}")
        index: list[dict[str, Any]] = self.client.get_model_repository_index()
        check(any(m["name"] == self.model and m["state"] == "READY" for m in index), f"index: {index}")

    # inference

    def infer(self, inp: httpclient.InferInput, binary: bool) -> httpclient.InferResult:
        # binary: the client's defaults (binary inputs, no outputs named: binary_data_output);
        # JSON: every output asked with binary_data=False
        outputs = None if binary else [httpclient.InferRequestedOutput(n, binary_data=False) for n in OUTPUTS]
        result: httpclient.InferResult = self.client.infer(self.model, [inp], outputs=outputs, parameters={"exit": "edge"})
        probs = result.get_output("probabilities")
        check(probs is not None, "no probabilities output")
        in_binary = "binary_data_size" in (probs.get("parameters") or {})
        check(in_binary == binary, f"probabilities {'not ' if binary else ''}in binary: {probs}")
        return result

    def check_answers(self, result: httpclient.InferResult, vectors: list[Vector]) -> None:
        n = len(vectors)
        probs = result.as_numpy("probabilities")
        entropy = result.as_numpy("entropy")
        exit_point = result.as_numpy("exit_point")
        check(probs is not None and entropy is not None and exit_point is not None, "an output is missing")
        check(probs.dtype == np.float32 and probs.shape[0] == n, f"probabilities: {probs.dtype} {probs.shape}")
        check(entropy.dtype == np.float64 and entropy.shape == (n,), f"entropy: {entropy.dtype} {entropy.shape}")
        check([bytes(p).decode() if isinstance(p, bytes) else str(p) for p in exit_point] == ["edge"] * n, f"exit_point: {exit_point}")
        want = softmax(np.array([v["exitLogits"] for v in vectors]))
        diff = float(np.abs(probs - want).max())
        check(diff < 1e-3, f"probabilities differ from the exported edge graph's by {diff}")
        ediff = float(np.abs(entropy - np.array([v["entropy"] for v in vectors])).max())
        check(ediff < 1e-3, f"entropy differs by {ediff}")

    def fp32(self, n: int, binary: bool) -> None:
        vectors = [self.vectors[i % len(self.vectors)] for i in range(n)]
        data: Floats = np.array([v["input"] for v in vectors], dtype=np.float32).reshape([n, *self.chw])
        inp = httpclient.InferInput(self.fp32_name, list(data.shape), "FP32")
        inp.set_data_from_numpy(data, binary_data=binary)
        self.check_answers(self.infer(inp, binary), vectors)

    def images(self, binary: bool) -> None:
        # binary: the files themselves; JSON: base64 text (JSON cannot carry raw bytes)
        raw = [base64.b64decode(v["imageBase64"]) for v in self.pngs]
        elements = raw if binary else [v["imageBase64"] for v in self.pngs]
        data = np.array(elements, dtype=np.object_)
        inp = httpclient.InferInput(self.bytes_name, [len(elements)], "BYTES")
        inp.set_data_from_numpy(data, binary_data=binary)
        self.check_answers(self.infer(inp, binary), self.pngs)

    # errors: InferenceServerException with the server's message, never a TypeError

    def expect_error(self, status: str, fragment: str, call: Callable[[], object]) -> None:
        try:
            call()
        except InferenceServerException as e:
            text = str(e)
            check(e.status() == status, f"status {e.status()!r}, expected {status!r}: {text}")
            check(isinstance(e.message(), str) and fragment in e.message(), f"message {e.message()!r} lacks {fragment!r}")
            check(text == f"[{status}] {e.message()}", f"str(): {text!r}")
            return
        raise AssertionError(f"no InferenceServerException (expected {status})")

    def errors(self) -> None:
        self.expect_error("404", "unknown model", lambda: self.client.get_model_metadata("no-such-model"))
        self.expect_error("404", "unknown model", lambda: self.client.get_model_config("no-such-model"))
        data = np.zeros([1, 3, 16, 16], dtype=np.float32)
        for binary in (True, False):
            inp = httpclient.InferInput(self.fp32_name, list(data.shape), "FP32")
            inp.set_data_from_numpy(data, binary_data=binary)
            self.expect_error("404", "unknown model", partial(self.client.infer, "no-such-model", [inp]))
            self.expect_error("400", "shape", partial(self.client.infer, self.model, [inp]))
        check(not self.client.is_model_ready("no-such-model"), "an unknown model is ready")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("url", help="the edge, e.g. http://127.0.0.1:8787")
    parser.add_argument("--model", default="cifar10")
    args = parser.parse_args()
    c = Checks(args.url, args.model)
    try:
        c.run("health: live, ready, model ready", c.health)
        c.run("server and model metadata", c.metadata)
        c.run("model config", c.config)
        c.run("statistics and repository index", c.stats_and_index)
        for binary in (True, False):
            mode = "binary" if binary else "JSON"
            c.run(f"infer FP32 batch 1 ({mode})", partial(c.fp32, 1, binary))
            c.run(f"infer FP32 batch {BATCH} ({mode})", partial(c.fp32, BATCH, binary))
            c.run(f"infer BYTES PNG images ({mode})", partial(c.images, binary))
        c.run("errors: unknown model, wrong shape", c.errors)
    finally:
        c.client.close()
    print(f"{'FAILED' if c.failed else 'passed'}: tritonclient against {args.url}", flush=True)
    return 1 if c.failed else 0


if __name__ == "__main__":
    sys.exit(main())
