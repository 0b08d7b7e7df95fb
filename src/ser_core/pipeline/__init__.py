"""The analysis pipeline: audio decoding, pieces of long recordings, speech detection, emotion
windows, words and timeline, warnings, and the output formats."""
