"""Pydantic models of what the library returns."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Segment(BaseModel):
    """A stretch of speech with one emotion: [start, end) seconds."""

    start: float
    end: float
    label: str
    confidence: float
    probabilities: dict[str, float]


class Word(BaseModel):
    """A transcribed word, with the emotion of the audio it spans (None: outside every segment)."""

    start: float
    end: float
    text: str
    probability: float = Field(description="the transcriber's confidence in the word")
    emotion: str | None = None
    confidence: float | None = None


class Sentence(BaseModel):
    """A transcript sentence with the emotion predicted from its own audio span."""

    start: float
    end: float
    text: str
    emotion: str
    confidence: float
    probabilities: dict[str, float]


class TimelineRow(BaseModel):
    """What was said, and in which emotion: consecutive words sharing an emotion."""

    start: float
    end: float
    emotion: str | None
    confidence: float | None
    text: str


class AnalysisResult(BaseModel):
    """The utterance-level emotion of a file, its emotion over time, and (optionally) what was said."""

    path: str
    profile: str
    backend_id: str
    backend_model_id: str
    model: str
    duration: float = Field(description="seconds")
    label: str
    confidence: float
    probabilities: dict[str, float]
    speech: list[tuple[float, float]] = Field(default_factory=list, description="speech regions (VAD)")
    segments: list[Segment]
    transcriber: str | None = Field(default=None, description="transcriber and model, when transcribed")
    language: str | None = None
    words: list[Word] = Field(default_factory=list)
    sentences: list[Sentence] = Field(default_factory=list)
    timeline: list[TimelineRow] = Field(default_factory=list)
    ser_core_version: str
    #: Loudness envelope (0..1, 50 dB range) at `envelope_rate` Hz, for pictures; not in JSON.
    envelope: list[float] = Field(default_factory=list, exclude=True)
    envelope_rate: float = Field(default=0.0, exclude=True)
