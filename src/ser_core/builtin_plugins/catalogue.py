"""The profiles of the project's own backend plugins, known even where the plugin is not installed,
so `--profile accurate` without `ser-backend-hf` says what to install. Registered first; the plugin
that provides a profile registers it again (the same fields) and its entry replaces this one."""

from __future__ import annotations

from ser_core.contract.hookspecs import hookimpl

#: name -> (backend id, fields); every first-party plugin registers the same for its own profiles
#: (tests/test_plugins.py checks that they agree).
PROFILES = {
    "fast": (
        "handcrafted",
        {
            "distribution": "ser-backend-handcrafted",
            "description": "handcrafted acoustic features + linear model",
            # telephone LOCO -0.005 against -0.022, within Emo-DB -0.04 against -0.14 (performance.md)
            "narrowband_alternative": "accurate",
        },
    ),
    "medium": (
        "hf_xlsr",
        {
            "distribution": "ser-backend-hf",
            "description": "wav2vec2-family embeddings (XLS-R, HuBERT, WavLM)",
            "needs": "torch",
            "timeout_seconds": 3600.0,
        },
    ),
    "accurate": (
        "hf_whisper",
        {
            "distribution": "ser-backend-hf",
            "description": "Whisper encoder embeddings",
            "needs": "torch",
            "timeout_seconds": 3600.0,
        },
    ),
    "accurate-research": (
        "emotion2vec",
        {
            "distribution": "ser-backend-emotion2vec",
            "description": "emotion2vec embeddings (restricted licence, needs consent)",
            "restricted": True,
            "needs": "torch",
            "timeout_seconds": 3600.0,
        },
    ),
}


@hookimpl
def ser_register_profiles(register):
    for name, (backend_id, fields) in PROFILES.items():
        register(name, backend_id, catalogue=True, **fields)
