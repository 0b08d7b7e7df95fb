"""Pydantic models of what the library returns."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Segment(BaseModel):
    """A stretch of audio with one emotion: [start, end) seconds."""

    start: float
    end: float
    label: str
    confidence: float
    probabilities: dict[str, float]


class AnalysisResult(BaseModel):
    """The utterance-level emotion of a file and its emotion over time."""

    path: str
    profile: str
    backend_id: str
    backend_model_id: str
    model: str
    duration: float = Field(description="seconds")
    label: str
    confidence: float
    probabilities: dict[str, float]
    segments: list[Segment]
    ser_core_version: str
