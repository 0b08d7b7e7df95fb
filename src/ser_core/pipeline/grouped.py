"""Several analyses advancing together, so that their transcription is batched.

Whisper decodes one window of a short recording in nearly the time it decodes a batch of them
(docs/performance.md), so a batch run keeps up to `group` analyses (`analysis.analysis`) open
at once: in each round every open analysis runs until it needs words, and one
`Transcriber.transcribe_many` call answers them all. An analysis that ends makes room for the
next input, so a long recording (one request per piece) never holds the short ones back.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from typing import Any

from ser_core.contract.results import AnalysisResult
from ser_core.contract.transcriber import Request, Transcriber, Transcript
from ser_core.errors import SerError
from ser_core.pipeline.analysis import Steps, analysis

#: What became of an input: its position among the inputs, its path, and its result or why it failed.
Done = tuple[int, Any, AnalysisResult | SerError]


def analyze_grouped(paths: Iterable[str | os.PathLike[str]], group: int, **kwargs: Any) -> Iterator[Done]:
    """`(index, path, result or SerError)` per input in the order the analyses end (`analyze`'s keyword
    arguments; a timeout counts from each input's own start). At most `group` inputs are open at
    once; a failing input is reported and the others go on."""
    inputs = enumerate(paths)
    open_: dict[int, tuple[Any, Steps]] = {}
    asked: dict[int, tuple[Transcriber, Request]] = {}
    while True:
        while len(open_) < group:  # fill the free places; an input without transcription ends here
            item = next(inputs, None)
            if item is None:
                break
            index, path = item
            steps = analysis(path, **kwargs)
            outcome = _advance(steps, None)
            if isinstance(outcome, tuple):
                open_[index], asked[index] = (path, steps), outcome
            else:
                yield index, path, outcome
        if not asked:
            return
        for index, said in _answers(asked):
            path, steps = open_[index]
            outcome = said if isinstance(said, SerError) else _advance(steps, said)
            if isinstance(outcome, tuple):
                asked[index] = outcome
            else:
                steps.close()
                del open_[index], asked[index]
                yield index, path, outcome


def _advance(
    steps: Steps, said: Transcript | None
) -> tuple[Transcriber, Request] | AnalysisResult | SerError:
    """Run an analysis to its next request, its result, or its error."""
    try:
        return next(steps) if said is None else steps.send(said)
    except StopIteration as end:
        return end.value
    except SerError as exc:
        return exc


def _answers(asked: dict[int, tuple[Transcriber, Request]]) -> list[tuple[int, Transcript | SerError]]:
    """Every open request answered, those of one transcriber in one call. When a call fails, its
    requests are asked again one by one, so only the input that fails is reported."""
    by_transcriber: dict[int, list[int]] = {}
    for index, (transcriber, _) in asked.items():
        by_transcriber.setdefault(id(transcriber), []).append(index)
    answers: list[tuple[int, Transcript | SerError]] = []
    for indices in by_transcriber.values():
        transcriber = asked[indices[0]][0]
        requests = [asked[i][1] for i in indices]
        try:
            answers += zip(indices, transcriber.transcribe_many(requests), strict=True)
        except SerError:
            for index, request in zip(indices, requests, strict=True):
                try:
                    answers.append((index, transcriber.transcribe_many([request])[0]))
                except SerError as exc:
                    answers.append((index, exc))
    return answers
