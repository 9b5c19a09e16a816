"""Acting on QC: which samples leave the models (``qc.exclude`` of a dataset), and why.

``none`` (default): nothing leaves; the table still says what ``outliers`` would exclude.
``outliers``: every sample flagged as an outlier (prepost.qc.outliers or the correlation
rule), both samples of a pair whose identity is doubted, and a sample whose expressed sex
contradicts its sample sheet. ``list``: the samples named in ``qc.samples``.

An excluded sample leaves every model (``usable`` and ``in_pair`` false in the analysis sheet);
its partner leaves the paired contrasts (``in_pair`` false) but stays where unpaired samples are
used (the responder contrast on pre-treatment samples). The reason goes to the pairs table and
the report. Foreign-read shares and patient-level deviations are shown, never acted on.
"""

from __future__ import annotations

import pandas as pd

MODES = ("none", "outliers", "list")
EXCLUSION_COLUMNS = ["sample", "patient", "timepoint", "qc_flags", "would_exclude",
                     "excluded", "partner_excluded", "reason"]


class ExclusionError(ValueError):
    """A qc.exclude setting that cannot be applied."""


def candidates(samples_qc: pd.DataFrame) -> dict[str, str]:
    """Sample -> reason, for what ``outliers`` excludes."""
    out = {}
    for r in samples_qc.itertuples():
        why = []
        if bool(r.outlier):
            why.append("outlier")
        if r.pair_identity == "mismatch":
            why.append("pair identity doubted")
        if bool(r.sex_mismatch):
            why.append("expressed sex contradicts the sample sheet")
        if why:
            out[str(r.sample)] = ", ".join(why)
    return out


def apply_exclusion(sheet: pd.DataFrame, pairs_table: pd.DataFrame, samples_qc: pd.DataFrame,
                    mode: str = "none", listed=(), dataset: str = "dataset"):
    """(analysis sheet, pairs table with qc_status/qc_reason, exclusion table)."""
    if mode not in MODES:
        raise ExclusionError(f"dataset {dataset!r}: qc.exclude {mode!r}; expected one of {list(MODES)}")
    sheet = sheet.copy()
    sheet["sample"] = sheet["sample"].astype(str)
    known = set(sheet["sample"])
    cand = candidates(samples_qc)
    if mode == "list":
        bad = [s for s in listed if str(s) not in known]
        if bad:
            raise ExclusionError(
                f"dataset {dataset!r}: qc.samples {bad} are not samples of the dataset "
                f"(expected ids of samples.tsv, e.g. {sorted(known)[:3]})")
        excluded = {str(s): "listed in qc.samples" for s in listed}
    elif mode == "outliers":
        excluded = dict(cand)
    else:
        if listed:
            raise ExclusionError(f"dataset {dataset!r}: qc.samples is set but qc.exclude is "
                                 f"{mode!r}; set qc.exclude: list to use it")
        excluded = {}
    in_pair = sheet["in_pair"].astype(str).str.lower().isin(["true", "1"])
    paired = sheet[in_pair & sheet["timepoint"].isin(["pre", "post"])]
    partner = {}
    for _, grp in paired.groupby("patient"):
        if len(grp) == 2:
            a, b = grp["sample"].tolist()
            partner[a], partner[b] = b, a
    partners = {partner[s]: s for s in excluded if s in partner and partner[s] not in excluded}
    ex = sheet["sample"].isin(excluded)
    px = sheet["sample"].isin(partners)
    sheet["usable"] = (sheet["usable"].astype(str).str.lower().isin(["true", "1"])
                       if "usable" in sheet else in_pair) & ~ex
    sheet["in_pair"] = in_pair & ~ex & ~px
    sheet["qc_excluded"] = ex
    sheet["qc_reason"] = [
        f"QC: excluded ({excluded[s]})" if s in excluded
        else f"QC: partner {partners[s]} excluded; left out of paired contrasts" if s in partners
        else "" for s in sheet["sample"]
    ]
    pt = pairs_table.copy()
    pt["sample"] = pt["sample"].astype(str)
    reason = dict(zip(sheet["sample"], sheet["qc_reason"]))
    pt["qc_status"] = ["excluded" if s in excluded else "partner excluded" if s in partners
                       else "kept" for s in pt["sample"]]
    pt["qc_reason"] = pt["sample"].map(reason).fillna("")
    sq = samples_qc.set_index(samples_qc["sample"].astype(str))
    table = pd.DataFrame({
        "sample": sheet["sample"],
        "patient": sheet["patient"].astype(str),
        "timepoint": sheet["timepoint"],
        "qc_flags": sheet["sample"].map(sq["qc_flags"]).fillna(""),
        "would_exclude": sheet["sample"].isin(cand),
        "excluded": ex,
        "partner_excluded": px,
        "reason": sheet["qc_reason"],
    })
    table = table[(table["qc_flags"] != "") | table["excluded"] | table["partner_excluded"]]
    return sheet, pt, table[EXCLUSION_COLUMNS].reset_index(drop=True)
