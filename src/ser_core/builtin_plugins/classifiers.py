"""Built-in classifier kinds."""

from ser_core.contract.hookspecs import hookimpl
from ser_core.models.classifiers import LogisticClassifier, ShrinkageLDAClassifier


@hookimpl
def ser_register_classifiers(register):
    register(LogisticClassifier.kind, LogisticClassifier)
    register(ShrinkageLDAClassifier.kind, ShrinkageLDAClassifier)
