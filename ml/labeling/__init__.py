"""Labeling: rules (`ml.labeling.rules`) and a trainable classifier (`ml.labeling.classifier`).

Importing this package stays light (no numpy, torch or transformers): the classifier's modules
load their heavy libraries only when used.
"""

from ml.labeling.hits import (
    DISPLAY_NAMES,
    INTENT_VALUES,
    KEYS,
    SENTIMENT_VALUES,
    Key,
    LabelHit,
    Source,
)
from ml.labeling.rules import Rule, RulesError, RuleSet

__all__ = [
    "DISPLAY_NAMES",
    "INTENT_VALUES",
    "KEYS",
    "SENTIMENT_VALUES",
    "Key",
    "LabelHit",
    "Rule",
    "RuleSet",
    "RulesError",
    "Source",
]
