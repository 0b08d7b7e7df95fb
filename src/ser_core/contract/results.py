"""Pydantic models of what the library returns."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

#: What the analysis could say: "ok"; "no_speech" (no label: nothing to judge); "too_short" (a
#: label from less speech than `min_speech_seconds`, which the models are not reliable on).
Status = Literal["ok", "no_speech", "too_short"]

SPEAKER = "who speaks (S1, S2, ... in order of first appearance); None: speakers off"
UNCERTAIN = "the label's calibrated confidence is below `uncertain_below`: more likely wrong than right"


class Segment(BaseModel):
    """A stretch of speech with one emotion: [start, end) seconds."""

    start: float
    end: float
    label: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool = Field(default=False, description=UNCERTAIN)
    speaker: str | None = Field(default=None, description=SPEAKER)


class Word(BaseModel):
    """A transcribed word, with the emotion of the audio it spans (None: outside every segment)."""

    start: float
    end: float
    text: str
    probability: float = Field(description="the transcriber's confidence in the word")
    emotion: str | None = None
    confidence: float | None = None
    speaker: str | None = Field(default=None, description=SPEAKER)


class Sentence(BaseModel):
    """A transcript sentence with the emotion predicted from its own audio span."""

    start: float
    end: float
    text: str
    emotion: str
    confidence: float
    probabilities: dict[str, float]
    uncertain: bool = Field(default=False, description=UNCERTAIN)
    speaker: str | None = Field(default=None, description=SPEAKER)


class TimelineRow(BaseModel):
    """What was said, and in which emotion: consecutive words sharing an emotion, or a stretch of
    speech in which no words were transcribed (`words` 0, empty text)."""

    start: float
    end: float
    emotion: str | None
    confidence: float | None
    text: str
    words: int = Field(default=0, description="words in the row; 0: speech without transcribed words")
    uncertain: bool = Field(default=False, description=UNCERTAIN)
    speaker: str | None = Field(default=None, description=SPEAKER)


class Turn(BaseModel):
    """A stretch of speech by one speaker: [start, end) seconds."""

    start: float
    end: float
    speaker: str


class Moment(BaseModel):
    """One of a speaker's strongest emotional moments: an emotion segment."""

    start: float
    end: float
    emotion: str
    confidence: float


class SpeakerSummary(BaseModel):
    """One speaker over the recording: how long they spoke and how they felt."""

    speaker: str = Field(description="S1, S2, ... in order of first appearance")
    talk_seconds: float
    share: float = Field(description="share of the recording's speech")
    label: str | None = Field(description="the emotion of the largest share of this speaker's speech")
    confidence: float | None = Field(description="the label's probability, averaged over the speech")
    uncertain: bool = Field(default=False, description=UNCERTAIN)
    probabilities: dict[str, float] = Field(description="averaged over this speaker's speech time")
    shares: dict[str, float] = Field(description="share of this speaker's speech time each emotion holds")
    early: str | None = Field(default=None, description="the label of the first third of their speech")
    late: str | None = Field(default=None, description="the label of the last third of their speech")
    moments: list[Moment] = Field(
        default_factory=list, description="the most confident segments of an emotion other than neutral/calm"
    )


class AnalysisResult(BaseModel):
    """The utterance-level emotion of a file, its emotion over time, and (optionally) what was said."""

    path: str
    profile: str
    backend_id: str
    backend_model_id: str
    model: str
    duration: float = Field(description="seconds")
    status: Status = "ok"
    label: str | None = Field(
        description="the emotion of the largest share of speech time (None without speech)"
    )
    confidence: float | None = Field(description="the label's probability, averaged over the speech")
    uncertain: bool = Field(default=False, description=UNCERTAIN)
    probabilities: dict[str, float] = Field(
        description="each emotion's probability averaged over the speech (segments weighted by duration)"
    )
    shares: dict[str, float] = Field(
        default_factory=dict, description="share of speech time each emotion's segments hold"
    )
    speech_seconds: float = Field(default=0.0, description="seconds of speech (VAD)")
    warnings: list[str] = Field(
        default_factory=list, description="what about the audio makes the result less reliable"
    )
    adapted_to: int | None = Field(
        default=None,
        description="features standardised by the statistics of this many recordings of the same "
        "source (`--adapt`); None: by a typical training corpus's",
    )
    speech: list[tuple[float, float]] = Field(default_factory=list, description="speech regions (VAD)")
    segments: list[Segment]
    transcriber: str | None = Field(default=None, description="transcriber and model, when transcribed")
    language: str | None = None
    words: list[Word] = Field(default_factory=list)
    sentences: list[Sentence] = Field(default_factory=list)
    timeline: list[TimelineRow] = Field(default_factory=list)
    diarizer: str | None = Field(default=None, description="diarizer and model, when speakers were found")
    turns: list[Turn] = Field(default_factory=list, description="who speaks when (empty: speakers off)")
    speakers: list[SpeakerSummary] = Field(default_factory=list, description="each speaker's summary")
    ser_core_version: str
    #: Loudness envelope (0..1, 50 dB range) at `envelope_rate` Hz, for pictures; not in JSON.
    envelope: list[float] = Field(default_factory=list, exclude=True)
    envelope_rate: float = Field(default=0.0, exclude=True)
