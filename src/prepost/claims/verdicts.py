"""The one rule that turns an effect and a significance call into a claim verdict, shared by
the per-dataset claims table and the pooled meta-analysis."""

from __future__ import annotations

import numpy as np

from prepost.vocabulary import CONTRADICTED, MIXED, NOT_TESTABLE, OPPOSITE_NS, REPRODUCED, SAME_NS


def verdicts(effect, expected, significant, testable) -> tuple[np.ndarray, np.ndarray]:
    """(observed direction "up" / "down" / "none", verdict) per row: the effect's sign against
    the expected direction, and whether its adjusted p passed; untestable rows get
    NOT_TESTABLE whatever the rest says."""
    observed = np.sign(np.asarray(effect, dtype=float))
    direction = np.select([observed > 0, observed < 0], ["up", "down"], "none")
    same = direction == np.asarray(expected)
    significant, testable = np.asarray(significant, bool), np.asarray(testable, bool)
    verdict = np.select(
        [~testable, same & significant, same, significant],
        [NOT_TESTABLE, REPRODUCED, SAME_NS, CONTRADICTED],
        OPPOSITE_NS,
    )
    return direction, verdict


def claim_verdict(feature_verdicts: list[str]) -> str:
    """A claim's verdict in one dataset (or pooled) from its features' verdicts: the common
    verdict when the testable features agree, MIXED when they do not, NOT_TESTABLE when none
    is testable. A feature the source reports only as not significant counts as testable."""
    testable = [v for v in feature_verdicts if v != NOT_TESTABLE]
    if not testable:
        return NOT_TESTABLE
    return testable[0] if len(set(testable)) == 1 else MIXED
