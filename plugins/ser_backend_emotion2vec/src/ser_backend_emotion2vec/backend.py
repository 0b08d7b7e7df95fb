"""emotion2vec through FunASR: frame embeddings at 50 Hz for the core's classifier and timeline,
and the model's own 9-class head mapped onto the core's labels."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np

from ser_core.contract.backend import EmbeddingBackend
from ser_core.errors import ArtifactError

DEFAULT_MODEL_ID = "iic/emotion2vec_plus_large"
MIN_SAMPLES = 400  # the convolutional front end's receptive field
CHUNK_SECONDS, CHUNK_OVERLAP = 30.0, 2.0
#: The model's head labels (`tokens.txt`: "生气/angry", ...) -> the core's; other/unknown -> None.
HEAD_LABELS = {
    "angry": "angry",
    "disgusted": "disgust",
    "fearful": "fearful",
    "happy": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "surprised": "surprised",
    "other": None,
    "<unk>": None,
    "unknown": None,
}


def model_id() -> str:
    return os.environ.get("SER_ACCURATE_RESEARCH_MODEL_ID", DEFAULT_MODEL_ID)


def head_model_path(cache_dir: Path, model: str) -> Path:
    """Where the artifact replicating the model's own head lives (written when the backend loads)."""
    return Path(cache_dir) / "emotion2vec" / f"head-{hashlib.sha256(model.encode()).hexdigest()[:16]}.npz"


def core_label(token: str) -> str | None:
    """ "生气/angry" -> "angry"; "其他/other" and "<unk>" -> None."""
    return HEAD_LABELS.get(token.split("/")[-1].strip().lower())


def is_model_dir(path: Path) -> bool:
    return path.is_dir() and ((path / "config.yaml").is_file() or (path / "configuration.json").is_file())


def load(model: str, threads: int) -> Any:
    """`funasr.AutoModel` for a local directory, or for a hub id (downloads, for users with a
    network); a one-line `ArtifactError` when neither works. FunASR's own chatter is silenced."""
    path = Path(model).expanduser()
    if path.exists() and not is_model_dir(path):
        raise ArtifactError(
            f"{model}: not an emotion2vec model directory (no config.yaml or configuration.json)"
        )
    with contextlib.redirect_stdout(io.StringIO()):
        import funasr

        try:
            return funasr.AutoModel(
                model=str(path) if path.exists() else model,
                disable_update=True,
                device="cpu",
                ncpu=threads,
                disable_pbar=True,
                log_level="ERROR",
            )
        except (RuntimeError, OSError, AssertionError) as exc:
            if path.exists():
                raise ArtifactError(
                    f"{model}: cannot be loaded by FunASR ({str(exc).splitlines()[0]})"
                ) from None
            raise ArtifactError(
                f"emotion2vec model {model!r} is not available locally and could not be downloaded "
                f"(it comes from ModelScope: https://modelscope.cn/models/{model}); download it and set "
                "SER_ACCURATE_RESEARCH_MODEL_ID to its directory"
            ) from None


def check_weights(folder: Path, module: Any) -> None:
    """FunASR loads weights non-strictly and skips any whose shape does not match the config, which
    would leave random weights in place without a word: compare them ourselves (local dirs)."""
    import json

    import torch

    if not is_model_dir(folder):
        return
    name = "model.pt"
    meta = folder / "configuration.json"
    if meta.is_file():
        with contextlib.suppress(ValueError, KeyError, TypeError):
            name = json.loads(meta.read_text())["file_path_metas"]["init_param"]
    try:
        state = torch.load(folder / name, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError) as exc:
        raise ArtifactError(f"{folder / name}: cannot read the weights ({exc})") from None
    for key in ("state_dict", "model_state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    expected = {k: tuple(v.shape) for k, v in module.state_dict().items()}
    wrong = [k for k, v in state.items() if k in expected and tuple(v.shape) != expected[k]]
    missing = [k for k in expected if k not in state and not k.startswith(("ema", "_ema"))]
    if wrong or missing:
        what = (
            f"{len(wrong)} with other shapes (e.g. {wrong[0]})"
            if wrong
            else f"{len(missing)} missing (e.g. {missing[0]})"
        )
        raise ArtifactError(f"{folder}: weights do not match config.yaml: {what}")


class Emotion2vecBackend(EmbeddingBackend):
    """Frames: emotion2vec's frame embeddings (50 Hz); pooled as mean and std."""

    backend_id = "emotion2vec"
    frame_rate = 50.0

    def __init__(self, settings: Any = None) -> None:
        from ser_core.settings import get_settings

        self.model_id = model_id()
        self.model = load(self.model_id, os.cpu_count() or 1)
        check_weights(Path(self.model_id).expanduser(), self.model.model)
        probe = self._generate(np.zeros(16000, np.float32), "utterance", True)
        self.width = int(probe["feats"].shape[-1])
        self.dim = 2 * self.width
        self.head_labels = list(probe["labels"])
        if getattr(self.model.model, "proj", None) is not None:
            self.save_head_model(head_model_path((settings or get_settings()).cache_dir, self.model_id))

    def save_head_model(self, path: Path) -> Path:
        """The model's own head as a ser_core model artifact, so `ser analyze --profile
        accurate-research` works without training: on pooled [mean, std] vectors the classifier is
        softmax(W @ mean + b), exactly what FunASR computes on the mean of the frames; rows for
        "other" and "unknown" are dropped (the softmax renormalises over the rest)."""
        from ser_core.models.artifacts import Model, ModelMeta
        from ser_core.models.classifiers import LogisticClassifier

        proj = self.model.model.proj
        weight = proj.weight.detach().float().cpu().numpy()
        bias = proj.bias.detach().float().cpu().numpy()
        keep = [(row, core_label(token)) for row, token in enumerate(self.head_labels) if core_label(token)]
        rows, labels = [row for row, _ in keep], [label for _, label in keep]
        coef = np.zeros((len(rows), self.dim))
        coef[:, : self.width] = weight[rows]
        arrays = {
            "mean": np.zeros(self.dim),
            "scale": np.ones(self.dim),
            "coef": coef,
            "intercept": bias[rows],
        }
        classifier = LogisticClassifier.from_state({"c": 1.0, "max_iter": 1, "labels": labels}, arrays)
        meta = ModelMeta.for_backend(
            "accurate-research",
            self,
            labels,
            training={"source": "the emotion2vec model's own 9-class head; other/unknown dropped"},
        )
        return Model(meta, classifier).save(path)

    def config(self) -> dict[str, Any]:
        return {"pooling": "mean+std"}

    def _generate(self, signal: np.ndarray, granularity: str, embedding: bool) -> dict[str, Any]:
        signal = np.asarray(signal, dtype=np.float32)
        if len(signal) < MIN_SAMPLES:
            signal = np.pad(signal, (0, MIN_SAMPLES - len(signal)))
        with contextlib.redirect_stdout(io.StringIO()):
            out = self.model.generate(
                signal, granularity=granularity, extract_embedding=embedding, disable_pbar=True
            )
        return out[0]

    def frames(self, signal: np.ndarray) -> np.ndarray:
        """Frame embeddings at 50 Hz; audio longer than 30 s in chunks overlapping 2 s (attention
        over the whole input would grow quadratically)."""
        from ser_core.contract.encoders import chunked

        return chunked(signal, self._frames, self.frame_rate, CHUNK_SECONDS, CHUNK_OVERLAP)

    def _frames(self, signal: np.ndarray) -> np.ndarray:
        return np.asarray(self._generate(signal, "frame", True)["feats"], dtype=np.float32)

    def pool(self, frames: np.ndarray) -> np.ndarray:
        if len(frames) == 0:
            return np.zeros(self.dim, np.float32)
        return np.concatenate([frames.mean(axis=0), frames.std(axis=0)]).astype(np.float32)

    def head(self, signal: np.ndarray) -> dict[str, float]:
        """The model's own emotion probabilities, on the core's labels ("other" and "unknown"
        dropped, the rest renormalised): usable without training."""
        result = self._generate(signal, "utterance", False)
        return map_head(result["labels"], result["scores"])


def map_head(labels: list[str], scores: list[float]) -> dict[str, float]:
    mapped: dict[str, float] = {}
    for label, score in zip(labels, scores, strict=True):
        name = core_label(label)
        if name is not None:
            mapped[name] = mapped.get(name, 0.0) + float(score)
    total = sum(mapped.values())
    return {k: v / total for k, v in mapped.items()} if total > 0 else mapped
