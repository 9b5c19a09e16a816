"""The workflow's shared words: contrast names, sample labels, verdicts and thresholds.

One home for each name, so the schema, the models, the claims engine and the report cannot
drift apart. A leaf module: it imports nothing from prepost.
"""

from __future__ import annotations

# Contrasts (sign: positive log2fc = higher in the first-named group / after treatment).
POST_VS_PRE = "post_vs_pre"
RESPONDER_VS_NON_RESPONDER_PRE = "responder_vs_non_responder_pre"
POST_VS_PRE_RESPONDER = "post_vs_pre_responder"
POST_VS_PRE_NON_RESPONDER = "post_vs_pre_non_responder"
INTERACTION = "interaction"
CONTRASTS = (
    POST_VS_PRE,
    RESPONDER_VS_NON_RESPONDER_PRE,
    POST_VS_PRE_RESPONDER,
    POST_VS_PRE_NON_RESPONDER,
    INTERACTION,
)
PAIRED = frozenset({POST_VS_PRE, POST_VS_PRE_RESPONDER, POST_VS_PRE_NON_RESPONDER, INTERACTION})
GROUPED = (POST_VS_PRE_RESPONDER, POST_VS_PRE_NON_RESPONDER, INTERACTION)
TWO_GROUP = frozenset({RESPONDER_VS_NON_RESPONDER_PRE, INTERACTION})  # effects compare groups
DEFAULT_CONTRASTS = (POST_VS_PRE,)

# pairing.unpaired: what paired contrasts do with patients who have one sample.
DROP, BLOCK = "drop", "block"
UNPAIRED = (DROP, BLOCK)
# How a contrast modelled the patient (fit record's patient_model).
FIXED_BLOCK, RANDOM_EFFECT, UNPAIRED_MODEL = "fixed block", "random effect", "unpaired"

# Sample labels written by prepare (samples.tsv).
RESPONDER, NON_RESPONDER, UNKNOWN = "responder", "non_responder", "unknown"
RESPONSES = (RESPONDER, NON_RESPONDER)
ALL_PATIENTS = "all"  # the group label of a paired test over every pair (set_tests.tsv)

# The within-patient contrasts and the patient group each one tests (set_tests.tsv's group).
PAIRED_GROUP = {POST_VS_PRE: ALL_PATIENTS, POST_VS_PRE_RESPONDER: RESPONDER,
                POST_VS_PRE_NON_RESPONDER: NON_RESPONDER}

# Design minimums: complete pairs per dataset / paired contrast, samples per group.
MIN_PAIRS = 3
MIN_PER_GROUP = 2

# Value kinds of an expression matrix.
COUNTS, LOG2 = "counts", "log2"

# Claim verdicts.
REPRODUCED = "reproduced"
SAME_NS = "same direction, not significant"
CONTRADICTED = "contradicted"
OPPOSITE_NS = "opposite direction, not significant"
NOT_TESTABLE = "not testable"
# A gene a significant-only published table omits although its assay measured it (the table's
# universe): not significant there, direction unknown.
NS_UNREPORTED = "not significant in the source"
VERDICTS = (REPRODUCED, SAME_NS, CONTRADICTED, OPPOSITE_NS, NS_UNREPORTED, NOT_TESTABLE)
# A claim's verdict in a dataset when its features disagree (report scoreboard only).
MIXED = "mixed"

# Thresholds.
FILTER_ALPHA = 0.1  # DESeq2 results(alpha = 0.1): the independent-filtering target
ALPHA = 0.05  # claims, plots and report counts of significant genes / sets


def contrast_names() -> list[str]:
    """The contrast names a config may list (the schema's enum is checked against this)."""
    return list(CONTRASTS)
