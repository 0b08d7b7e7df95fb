"""The Whisper encoder on ONNX Runtime: exported once from a converted encoder directory, then run
without importing torch.

Why: on CPU, ONNX Runtime runs the encoder in about half torch's time, and a process that analyses
with the accurate profile no longer imports torch and transformers (about 5 s of start-up).
`int8`: dynamic int8 weights for every linear layer except the feed-forward output projections
(fc2), whose inputs carry Whisper's outlier activations; measured in docs/performance.md ("A
lighter accurate encoder"). The features stay those of the float32 encoder within a tolerance the
shipped classifier is validated for, so the model artifacts do not change.

Files, next to the converted encoder (`convert.pack_encoder_dir`), written once and atomically:
`encoder.onnx` (float32; outputs `hidden_0` .. `hidden_N` as `convert.hidden_states` indexes them),
`encoder-int8.onnx`, and `ser_onnx.json` naming the conversion they were made from; a stale or
unreadable record means a new export (torch is imported for it, once).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.atomic_files import atomic_write_text
from ser_core.errors import ArtifactError

log = logging.getLogger(__name__)

#: Bump to re-export every cache (a change of the graph or the quantization).
ONNX_FORMAT = 1
META_FILE = "ser_onnx.json"
FILES = {"fp32": "encoder.onnx", "int8": "encoder-int8.onnx"}


def _source(encoder_dir: Path) -> dict[str, Any]:
    """What the export is made from: the conversion record of the encoder directory."""
    from ser_backend_hf.convert import METADATA_FILE

    return json.loads((encoder_dir / METADATA_FILE).read_text())


def _up_to_date(encoder_dir: Path) -> bool:
    try:
        meta = json.loads((encoder_dir / META_FILE).read_text())
        return (
            meta.get("format") == ONNX_FORMAT
            and meta.get("source") == _source(encoder_dir)
            and all((encoder_dir / name).is_file() for name in FILES.values())
        )
    except (OSError, ValueError, AttributeError):
        return False


def fc2_nodes(model: Any) -> list[str]:
    """Names of the MatMul nodes fed by a Gelu: the feed-forward output projections (fc2)."""
    gelu = {out for node in model.graph.node if node.op_type == "Gelu" for out in node.output}
    return [node.name for node in model.graph.node if node.op_type == "MatMul" and node.input[0] in gelu]


def _export(encoder_dir: Path) -> None:
    import onnx
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    from ser_backend_hf.convert import forward_states, load_encoder

    encoder = load_encoder(encoder_dir)

    class HiddenStates(torch.nn.Module):
        """`convert.hidden_states` as a module: every hidden state, unpadded input."""

        def __init__(self) -> None:
            super().__init__()
            self.enc = encoder

        def forward(self, mel: torch.Tensor) -> tuple[torch.Tensor, ...]:
            return tuple(forward_states(self.enc, mel))

    n_states = encoder.config.encoder_layers + 1
    limit = encoder.config.max_source_positions * 2
    mel = torch.randn(2, encoder.config.num_mel_bins, 300)
    dims = {0: torch.export.Dim("batch", min=1, max=256), 2: torch.export.Dim("frames", min=2, max=limit)}
    fp32 = encoder_dir / FILES["fp32"]
    int8 = encoder_dir / FILES["int8"]
    staging = [Path(f"{path}.{os.getpid()}.tmp") for path in (fp32, int8)]
    try:
        torch.onnx.export(
            HiddenStates().eval(),
            (mel,),
            str(staging[0]),
            input_names=["mel"],
            output_names=[f"hidden_{i}" for i in range(n_states)],
            dynamic_shapes=(dims,),
            dynamo=True,
            optimize=True,
            verbose=False,
        )
        fc2 = fc2_nodes(onnx.load(str(staging[0])))
        quantize_dynamic(str(staging[0]), str(staging[1]), weight_type=QuantType.QInt8, nodes_to_exclude=fc2)
        for tmp, path in zip(staging, (fp32, int8), strict=True):
            os.replace(tmp, path)
    finally:
        for tmp in staging:
            tmp.unlink(missing_ok=True)
    meta = {
        "format": ONNX_FORMAT,
        "source": _source(encoder_dir),
        "int8_fp32_nodes": fc2,
        "torch": torch.__version__,
    }
    atomic_write_text(encoder_dir / META_FILE, json.dumps(meta, indent=2) + "\n")
    log.info("exported the encoder in %s to ONNX", encoder_dir)


def _first_line(exc: BaseException) -> str:
    return next((line for line in str(exc).splitlines() if line.strip()), "")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and the quantizer's advice (logged warnings, Python warnings) left out."""
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(logging.NOTSET)


def onnx_files(encoder_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """The ONNX encoders of a converted encoder directory, exported on first use."""
    from filelock import FileLock

    encoder_dir = Path(encoder_dir)
    if not _up_to_date(encoder_dir):
        with FileLock(str(encoder_dir) + ".onnx.lock"):
            if not _up_to_date(encoder_dir):  # maybe done meanwhile
                log.warning("exporting the accurate encoder to ONNX (once, about 15 s)")
                try:
                    with _quiet():
                        _export(encoder_dir)
                except ImportError as exc:
                    raise ArtifactError(
                        f"exporting the accurate encoder to ONNX needs {exc.name}: pip install onnx "
                        "onnxscript (or SER_ACCURATE_RUNTIME=torch)"
                    ) from None
                except Exception as exc:  # the exporter's many error types end the same way
                    raise ArtifactError(
                        f"{encoder_dir}: ONNX export failed ({type(exc).__name__}: "
                        f"{_first_line(exc)}); SER_ACCURATE_RUNTIME=torch runs without it"
                    ) from None
    return {kind: encoder_dir / name for kind, name in FILES.items()}


class OnnxEncoder:
    """An exported encoder in an ONNX Runtime session: log-mel batch in, chosen hidden states out."""

    def __init__(self, path: Path, threads: int, one_at_a_time: bool = False) -> None:
        """`one_at_a_time`: run a batch item by item. Dynamic int8 scales each activation by the
        range of the whole batch, so a clip's numbers would depend on the clips beside it."""
        import onnxruntime as ort

        self.one_at_a_time = one_at_a_time
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own Fail/InvalidGraph/... types
            raise ArtifactError(
                f"{path}: cannot be loaded ({_first_line(exc)}); delete it to export again"
            ) from None

    def hidden_states(self, mel: np.ndarray, layers: Sequence[int]) -> dict[int, np.ndarray]:
        """{layer: (batch, frames, width)} for each of `layers`."""
        names = [f"hidden_{i}" for i in layers]
        mel = np.ascontiguousarray(mel, np.float32)
        if self.one_at_a_time and len(mel) > 1:
            parts = [self.session.run(names, {"mel": mel[k : k + 1]}) for k in range(len(mel))]
            out = [np.concatenate(states) for states in zip(*parts, strict=True)]
        else:
            out = self.session.run(names, {"mel": mel})
        return dict(zip(layers, out, strict=True))
