"""Dataset adapters: each layout read from a tiny tree of generated audio files."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from ser_core.builtin_plugins.layouts import CORPUS_LABELS
from ser_core.errors import DatasetError
from ser_core.training.datasets import Item, detect, load_dataset, summary

SR = 16000


def _write(path: Path, seed: int = 0) -> Path:
    """A 0.2 s sine plus noise; format chosen by the extension (.wav, .flac, .ogg)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(0.2 * SR)) / SR
    rng = np.random.default_rng(seed)
    audio = 0.3 * np.sin(2 * np.pi * (200 + 50 * seed) * t) + 0.01 * rng.standard_normal(t.size)
    sf.write(path, audio.astype(np.float32), SR)
    return path


def _tree(root: Path, names: list[str], ext: str = ".wav") -> Path:
    for n, name in enumerate(names):
        _write(root / f"{name}{ext}", seed=n)
    (root / "README.txt").write_text("not audio\n")
    return root


def _counts(items: list[Item]) -> dict[str, int]:
    return dict(Counter(i.label for i in items))


@pytest.fixture
def ravdess(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "ravdess",
        [
            "Actor_01/03-01-01-01-01-01-01",
            "Actor_01/03-01-05-02-02-02-01",
            "Actor_02/03-01-08-01-01-01-02",
            "Actor_02/03-01-02-02-01-02-02",
            "Actor_02/03-02-03-01-01-01-02",  # song: excluded
            "Actor_02/02-01-03-01-01-01-02",  # video only: excluded
        ],
    )


@pytest.fixture
def emodb(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "emodb", ["03a01Fa", "03a01Wb", "08b10La", "10a02Ec", "11a04Ad", "12b01Ta", "16a07Na"]
    )


@pytest.fixture
def emovo(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "emovo", ["f1/dis-f1-b1", "f1/gio-f1-l3", "m2/pau-m2-n4", "m2/rab-m2-b2", "m3/sor-m3-d1"]
    )


@pytest.fixture
def crema(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "crema", ["1001_DFA_ANG_XX", "1001_IEO_HAP_HI", "1091_TIE_SAD_LO", "1091_WSI_FEA_MD"]
    )


@pytest.fixture
def tess(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "tess",
        [
            "OAF_angry/OAF_back_angry",
            "OAF_Pleasant_surprise/OAF_back_ps",
            "YAF_fear/YAF_germ_fear",
            "YAF_sad/YAF_chat_sad",
        ],
    )


@pytest.fixture
def ased(tmp_path: Path) -> Path:
    return _tree(
        tmp_path / "ased",
        [
            "01Neutral/n1-01-01-01-01",
            "02Fearful/f2-02-01-02-09",
            "03Happy/h3-03-02-02-50",
            "04Sad/S4-04-02-01-29",  # upper case, as one file of ASED v1
            "05Angry/a5-03-01-01-09",  # speaker 09 with the other gender code, as in ASED v1
        ],
        ext=".flac",
    )


@pytest.fixture
def folders(tmp_path: Path) -> Path:
    return _tree(tmp_path / "mine", ["angry/a", "angry/b", "Sadness/c", "happy/sub/d", "neutral/e"])


def test_ravdess(ravdess: Path) -> None:
    items = load_dataset(ravdess)
    assert detect(ravdess) == "ravdess"
    assert [i.path for i in items] == sorted(i.path for i in items)
    assert _counts(items) == {"neutral": 1, "angry": 1, "surprised": 1, "calm": 1}
    assert {i.speaker for i in items} == {"ravdess:01", "ravdess:02"}
    assert {i.corpus for i in items} == {"ravdess"}


def test_emodb(emodb: Path) -> None:
    items = load_dataset(str(emodb))
    assert detect(emodb) == "emodb"
    assert [(i.path.stem, i.label, i.speaker) for i in items] == [
        ("03a01Fa", "happy", "emodb:03"),
        ("03a01Wb", "angry", "emodb:03"),
        ("08b10La", "boredom", "emodb:08"),
        ("10a02Ec", "disgust", "emodb:10"),
        ("11a04Ad", "fearful", "emodb:11"),
        ("12b01Ta", "sad", "emodb:12"),
        ("16a07Na", "neutral", "emodb:16"),
    ]


def test_emovo(emovo: Path) -> None:
    items = load_dataset(emovo)
    assert detect(emovo) == "emovo"
    assert [i.label for i in items] == ["disgust", "happy", "fearful", "angry", "surprised"]
    assert [i.speaker for i in items] == ["emovo:f1", "emovo:f1", "emovo:m2", "emovo:m2", "emovo:m3"]


def test_crema(crema: Path) -> None:
    items = load_dataset(crema)
    assert detect(crema) == "crema-d"
    assert [(i.label, i.speaker) for i in items] == [
        ("angry", "crema-d:1001"),
        ("happy", "crema-d:1001"),
        ("sad", "crema-d:1091"),
        ("fearful", "crema-d:1091"),
    ]


def test_tess(tess: Path) -> None:
    items = load_dataset(tess)
    assert detect(tess) == "tess"
    assert sorted((i.label, i.speaker) for i in items) == [
        ("angry", "tess:OAF"),
        ("fearful", "tess:YAF"),
        ("sad", "tess:YAF"),
        ("surprised", "tess:OAF"),
    ]


def test_ased(ased: Path) -> None:
    items = load_dataset(ased)
    assert detect(ased) == "ased" and detect(f"ased:{ased}") == "ased"
    assert [(i.path.stem, i.label, i.speaker) for i in items] == [
        ("n1-01-01-01-01", "neutral", "ased:01"),
        ("f2-02-01-02-09", "fearful", "ased:09"),
        ("h3-03-02-02-50", "happy", "ased:50"),
        ("S4-04-02-01-29", "sad", "ased:29"),
        ("a5-03-01-01-09", "angry", "ased:09"),
    ]
    assert {i.corpus for i in items} == {"ased"}


def test_folders(folders: Path) -> None:
    items = load_dataset(folders)
    assert detect(folders) == "folders"
    assert _counts(items) == {"angry": 2, "sad": 1, "happy": 1, "neutral": 1}
    assert {i.speaker for i in items} == {None}
    assert {i.corpus for i in items} == {"mine"}


def test_extension_agnostic(tmp_path: Path) -> None:
    root = _tree(tmp_path / "emodb", ["03a01Fa", "09b02Wa"], ext=".flac")
    _write(root / "13a01Ta.ogg")
    (root / "14a01Na.MP3").write_bytes(b"")  # adapters read names only, never the audio
    items = load_dataset(root)
    assert [i.path.name for i in items] == ["03a01Fa.flac", "09b02Wa.flac", "13a01Ta.ogg", "14a01Na.MP3"]


def test_non_audio_and_hidden_files_ignored(emodb: Path) -> None:
    (emodb / "notes.md").write_text("x")
    (emodb / "labels.csv").write_text("path,label\n")
    _write(emodb / "._03a01Fa.wav")  # macOS resource fork
    items = load_dataset(emodb)
    assert len(items) == 7
    assert all(i.path.suffix == ".wav" and not i.path.name.startswith(".") for i in items)


def test_clear_majority_detects_and_skips_strays(emodb: Path) -> None:
    _write(emodb / "extra" / "take1.wav")
    assert detect(emodb) == "emodb"
    assert len(load_dataset(emodb)) == 7


def test_explicit_layout_prefix(tmp_path: Path, emodb: Path) -> None:
    assert detect(f"emodb:{emodb}") == "emodb"
    assert len(load_dataset(f"emodb:{emodb}")) == 7
    relabelled = _tree(tmp_path / "lab", ["happy/03a01Wa", "sad/03a02Wa"])
    assert detect(relabelled) == "folders"  # a label-per-folder tree wins over file names
    assert [i.label for i in load_dataset(relabelled)] == ["happy", "sad"]
    assert [i.label for i in load_dataset(f"emodb:{relabelled}")] == ["angry", "angry"]
    mixed = _tree(tmp_path / "mixed", ["03a01Fa", "dis-f1-b1", "1001_DFA_ANG_XX", "x", "y"])
    items = load_dataset(f"emovo:{mixed}")
    assert [(i.label, i.speaker) for i in items] == [("disgust", "emovo:f1")]
    with pytest.raises(DatasetError, match="unknown dataset layout 'nope'"):
        load_dataset(f"nope:{emodb}")


def test_label_filter_with_aliases(emodb: Path) -> None:
    items = load_dataset(emodb, labels=["Anger", "sadness", "bored"])
    assert _counts(items) == {"angry": 1, "sad": 1, "boredom": 1}
    assert len(load_dataset(emodb, labels=[])) == 7
    with pytest.raises(DatasetError, match="no items with labels calm"):
        load_dataset(emodb, labels=["calm"])
    with pytest.raises(DatasetError, match="unknown emotion label 'grumpy'"):
        load_dataset(emodb, labels=["grumpy"])


def test_csv_manifest(tmp_path: Path) -> None:
    _write(tmp_path / "audio" / "a.wav")
    _write(tmp_path / "audio" / "b.wav", seed=1)
    other = _write(tmp_path / "elsewhere" / "c.wav", seed=2)
    manifest = tmp_path / "meta" / "set.csv"
    manifest.parent.mkdir()
    manifest.write_text(
        f"Path,Label,Speaker\n../audio/b.wav,anger,s2\n../audio/a.wav,Happy,s1\n\n{other},ps,\n",
        encoding="utf-8",
    )
    assert detect(manifest) == "csv"
    items = load_dataset(manifest)
    assert [(i.path.name, i.label, i.speaker, i.corpus) for i in items] == [
        ("a.wav", "happy", "set:s1", "set"),
        ("b.wav", "angry", "set:s2", "set"),
        ("c.wav", "surprised", None, "set"),
    ]
    assert all(i.path.is_file() for i in items)
    assert len(load_dataset(f"csv:{manifest}", labels=["happiness"])) == 1


def test_csv_errors(tmp_path: Path) -> None:
    _write(tmp_path / "a.wav")
    bad = tmp_path / "bad.csv"
    bad.write_text("path,label\na.wav,happy\nmissing.wav,sad\n")
    with pytest.raises(DatasetError, match=r"bad\.csv:3: audio file .*missing\.wav not found"):
        load_dataset(bad)
    bad.write_text("path,label\na.wav,grumpy\n")
    with pytest.raises(DatasetError, match=r"bad\.csv:2: unknown emotion label"):
        load_dataset(bad)
    bad.write_text("file,emotion\na.wav,happy\n")
    with pytest.raises(DatasetError, match="header must contain path,label"):
        load_dataset(bad)


def test_unknown_layout(tmp_path: Path) -> None:
    root = _tree(tmp_path / "misc", ["hello", "world", "03a01Fa", "dis-f1-b1"])
    with pytest.raises(
        DatasetError, match=r"cannot tell the dataset layout.*supported: folders, ravdess, emodb"
    ):
        detect(root)
    with pytest.raises(DatasetError, match="cannot tell the dataset layout"):
        load_dataset(root)


def test_path_errors(tmp_path: Path) -> None:
    with pytest.raises(DatasetError, match="no such file or directory"):
        load_dataset(tmp_path / "absent")
    empty = tmp_path / "empty"
    empty.mkdir()
    (empty / "README.txt").write_text("x")
    with pytest.raises(DatasetError, match="no audio files found"):
        load_dataset(empty)
    with pytest.raises(DatasetError, match="not a corpus folder"):
        load_dataset(empty / "README.txt")


def test_speakers_distinct_across_corpora(tmp_path: Path) -> None:
    # Emo-DB speaker "10" and RAVDESS actor "10" are different people.
    a = load_dataset(_tree(tmp_path / "e", ["10a01Fa", "10a02Wa"]))
    b = load_dataset(_tree(tmp_path / "r", ["Actor_10/03-01-03-01-01-01-10"]))
    assert {i.speaker for i in a}.isdisjoint({i.speaker for i in b})


def test_summary(emodb: Path, emovo: Path) -> None:
    s = summary(load_dataset(emodb) + load_dataset(emovo))
    assert s["n_files"] == 12
    assert list(s["labels"]) == [
        "neutral",
        "happy",
        "sad",
        "angry",
        "fearful",
        "disgust",
        "surprised",
        "boredom",
    ]
    assert s["labels"]["disgust"] == 2
    assert s["speakers"]["emodb:03"] == 2 and s["speakers"]["emovo:m2"] == 2
    assert s["corpora"] == {"emodb": 7, "emovo": 5}


def test_docs_list_every_corpus_code() -> None:
    doc = Path(__file__).resolve().parents[1] / "docs" / "datasets.md"
    if not doc.is_file():
        pytest.skip("docs not present")
    text = doc.read_text()
    for corpus, table in CORPUS_LABELS.items():
        for code, label in table.items():
            assert f"| `{code}` | {label} |" in text, (corpus, code)
