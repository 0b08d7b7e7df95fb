"""Built-in classifier kinds."""

from ser_core.classifier import LogisticClassifier, ShrinkageLDAClassifier
from ser_core.hookspecs import hookimpl


@hookimpl
def ser_register_classifiers(register):
    register(LogisticClassifier.kind, LogisticClassifier)
    register(ShrinkageLDAClassifier.kind, ShrinkageLDAClassifier)
