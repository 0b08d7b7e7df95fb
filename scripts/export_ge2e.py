"""Export the GE2E speaker encoder that the `resemblyzer` wheel ships to ONNX, for the built-in
diarizer (run with onnxruntime, so speakers need no torch).

    pip install torch==2.13.0 resemblyzer onnx onnxscript   # export-time only
    python scripts/export_ge2e.py [--out src/ser_core/builtin_plugins/weights/ge2e.onnx]

The graph takes a batch of power spectra, (batch, frames, 201) from a 400-point FFT every 160
samples at 16 kHz, and holds the 40-band mel filterbank resemblyzer computes with librosa, the
3-layer LSTM and the projection: out come (batch, 256) unit vectors, identical (to float
precision) to resemblyzer's `VoiceEncoder` on the same mel frames. The weights are read with
`torch.load(weights_only=True)` (no arbitrary unpickling) and are Apache-2.0 (resemblyzer,
Corentin Jemine); `weights/NOTICE` says so.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from pathlib import Path

import librosa
import numpy as np
import torch

OUT = Path(__file__).parents[1] / "src" / "ser_core" / "builtin_plugins" / "weights" / "ge2e.onnx"


class Encoder(torch.nn.Module):
    def __init__(self, state: dict[str, torch.Tensor]) -> None:
        super().__init__()
        mel = librosa.filters.mel(sr=16000, n_fft=400, n_mels=40)  # (40, 201), librosa's defaults
        self.register_buffer("mel", torch.from_numpy(mel.T.astype(np.float32)))
        self.lstm = torch.nn.LSTM(40, 256, 3, batch_first=True)
        self.linear = torch.nn.Linear(256, 256)
        self.lstm.load_state_dict({k[5:]: v for k, v in state.items() if k.startswith("lstm.")})
        self.linear.load_state_dict({k[7:]: v for k, v in state.items() if k.startswith("linear.")})

    def forward(self, power: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(power @ self.mel)
        raw = torch.relu(self.linear(hidden[-1]))
        return raw / raw.norm(dim=1, keepdim=True).clamp_min(1e-9)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    spec = importlib.util.find_spec("resemblyzer")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("pip install resemblyzer (for its pretrained.pt)")
    weights = Path(spec.submodule_search_locations[0]) / "pretrained.pt"
    state = torch.load(weights, map_location="cpu", weights_only=True)["model_state"]
    model = Encoder(state).eval()
    example = torch.rand(2, 160, 201)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        model,
        (example,),
        str(args.out),
        input_names=["power"],
        output_names=["embedding"],
        dynamic_axes={"power": {0: "batch", 1: "frames"}, "embedding": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    import onnxruntime

    session = onnxruntime.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    probe = torch.rand(3, 120, 201) * 10
    with torch.no_grad():
        expected = model(probe).numpy()
    got = session.run(None, {"power": probe.numpy()})[0]
    print("max difference to torch:", float(np.abs(got - expected).max()))
    print(args.out, args.out.stat().st_size, "bytes, sha256", hashlib.sha256(args.out.read_bytes()).hexdigest())


if __name__ == "__main__":
    main()
