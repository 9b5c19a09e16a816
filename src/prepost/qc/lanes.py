"""NanoString nCounter lane QC as the vendor's guidelines define it, and the housekeeping-gene
screen used for size factors.

Thresholds (defaults of nSolver 4.0, NanoString "nCounter Gene Expression Data Analysis
Guidelines", MAN-C0011-04, and the nSolver 4.0 User Manual, MAN-C0019-08, "QC settings"):

* imaging: FovCounted / FovCount >= 0.75 (fields of view the Digital Analyzer could image;
  nSolver flags a lane below 75 %).
* binding density: 0.1 <= BindingDensity <= 2.25 spots per square micron, nSolver's default
  for the nCounter MAX/FLEX Digital Analyzer (0.1-1.8 is the range for SPRINT and for older
  MAX/FLEX scanner software; set ``lane_qc.binding_density`` to ``[0.1, 1.8]`` there).
* positive-control linearity: R^2 of log2(count) on log2(concentration) of POS_A..POS_F
  (128, 32, 8, 2, 0.5, 0.125 fM) >= 0.95 (a count of 0 is taken as 1 before the log).
* limit of detection: the 0.5 fM positive control POS_E must be above mean(NEG) + 2 SD(NEG)
  (sample SD of the negative controls of the lane).

Lanes are flagged, never removed: the table and the report show them and the user decides
(``pairing.exclude``), as for the other QC flags.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from prepost import files
from prepost.io.rcc import HOUSEKEEPING, NEGATIVE, POSITIVE, combine, read_rcc_files

FOV_RATIO_MIN = 0.75
BINDING_DENSITY = (0.1, 2.25)
LINEARITY_R2_MIN = 0.95
LOD_SD = 2.0
POS_CONCENTRATIONS = {"POS_A": 128.0, "POS_B": 32.0, "POS_C": 8.0, "POS_D": 2.0, "POS_E": 0.5, "POS_F": 0.125}
LOD_PROBE = "POS_E"
DEFAULTS = {
    "fov_ratio_min": FOV_RATIO_MIN,
    "binding_density": list(BINDING_DENSITY),
    "linearity_r2_min": LINEARITY_R2_MIN,
}
_POS_NAME = re.compile(r"^(POS_[A-F])(\(.*\))?$")


class LaneQcError(ValueError):
    pass


def _positive_rows(probes: pd.DataFrame) -> pd.Series:
    """Positive probe name -> concentration (fM), from names such as POS_A(128)."""
    pos = probes.index[probes["CodeClass"] == POSITIVE]
    conc = {}
    for name in pos:
        m = _POS_NAME.match(name)
        if m and m.group(1) in POS_CONCENTRATIONS:
            conc[name] = POS_CONCENTRATIONS[m.group(1)]
    found = {_POS_NAME.match(n).group(1) for n in conc}
    if found != set(POS_CONCENTRATIONS):
        raise LaneQcError(
            f"positive controls {sorted(pos)}: expected POS_A..POS_F (ERCC spike-ins at "
            f"{', '.join(f'{v:g}' for v in POS_CONCENTRATIONS.values())} fM)"
        )
    return pd.Series(conc)


def limit_of_detection(counts: pd.DataFrame, probes: pd.DataFrame, sd: float = LOD_SD) -> pd.Series:
    """Per lane, mean + sd x SD (ddof 1) of the negative-control counts."""
    neg = counts.loc[probes.index[probes["CodeClass"] == NEGATIVE]].astype(float)
    if len(neg) < 2:
        raise LaneQcError(f"{len(neg)} negative control probe(s); need at least 2 for the limit of detection")
    return neg.mean(axis=0) + sd * neg.std(axis=0, ddof=1)


def lane_qc(counts: pd.DataFrame, probes: pd.DataFrame, lanes: pd.DataFrame, settings: dict | None = None) -> pd.DataFrame:
    """One row per lane: the four vendor QC metrics, their pass/fail, and ``flag`` (any failed)
    with ``reason`` naming each failed check and its threshold. Vectorised over lanes."""
    s = {**DEFAULTS, **(settings or {})}
    lo, hi = s["binding_density"]
    conc = _positive_rows(probes)
    x = np.log2(conc.to_numpy(float))
    y = np.log2(np.maximum(counts.loc[conc.index].to_numpy(float), 1.0))  # probes x lanes
    xc = x - x.mean()
    yc = y - y.mean(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc @ yc) / np.sqrt((xc**2).sum() * (yc**2).sum(axis=0))
    lod = limit_of_detection(counts, probes)
    pos_e = counts.loc[[n for n in conc.index if n.startswith(LOD_PROBE)][0]].astype(float)
    lanes = lanes.reindex(counts.columns)
    out = pd.DataFrame(index=counts.columns)
    out.index.name = "sample"
    out["fov_count"] = lanes["FovCount"].astype(float)
    out["fov_counted"] = lanes["FovCounted"].astype(float)
    out["fov_ratio"] = out["fov_counted"] / out["fov_count"]
    out["binding_density"] = lanes["BindingDensity"].astype(float)
    out["pos_linearity_r2"] = r**2
    out["neg_mean_2sd"] = lod
    out["pos_e_count"] = pos_e
    checks = {
        "imaging": (out["fov_ratio"] >= s["fov_ratio_min"], f"FOV counted/count < {s['fov_ratio_min']:g}"),
        "binding_density": (
            out["binding_density"].between(lo, hi),
            f"binding density outside {lo:g}-{hi:g}",
        ),
        "linearity": (
            out["pos_linearity_r2"] >= s["linearity_r2_min"],
            f"positive-control R2 < {s['linearity_r2_min']:g}",
        ),
        "limit_of_detection": (out["pos_e_count"] > out["neg_mean_2sd"], "POS_E (0.5 fM) <= mean(NEG) + 2 SD"),
    }
    reasons = pd.Series("", index=out.index)
    for name, (ok, why) in checks.items():
        out[f"{name}_pass"] = ok.to_numpy()
        reasons = reasons.where(ok, reasons.str.cat(pd.Series(why, index=out.index), sep="; "))
    out["flag"] = ~out[[f"{n}_pass" for n in checks]].all(axis=1)
    out["reason"] = reasons.str.lstrip("; ")
    for col in ("ScannerID", "CartridgeID", "StagePosition"):
        if col in lanes:
            out[col.lower()] = lanes[col].to_numpy()
    return out.reset_index()


# Housekeeping screen, chosen before looking at the data (documented in README):
# 1. low: the gene's count is at or below its lane's limit of detection (mean + 2 SD of the
#    negative controls) in more than half of the samples;
# 2. unstable: the SD over samples of log2(count) minus the sample's mean log2 count over the
#    remaining housekeeping genes (geometric-mean normalised) is beyond Tukey's far-out fence
#    (Q3 + 3 IQR) of those SDs, the outlier rule the sample QC uses.
HK_LOW_FRACTION = 0.5
HK_FENCE_IQR = 3.0


def screen_housekeeping(counts: pd.DataFrame, probes: pd.DataFrame) -> tuple[list[str], dict]:
    """(retained housekeeping genes, {screened-out gene: reason}) over the given lanes."""
    hk = list(probes.index[probes["CodeClass"] == HOUSEKEEPING])
    if not hk:
        raise LaneQcError("the panel has no Housekeeping probe: size factors from housekeeping genes impossible")
    lod = limit_of_detection(counts, probes)
    c = counts.loc[hk].astype(float)
    below = (c.le(lod, axis=1)).mean(axis=1)
    out: dict = {}
    low = below > HK_LOW_FRACTION
    for g in below.index[low]:
        out[g] = f"low: at or below the lane's limit of detection in {below[g]:.0%} of samples"
    keep = [g for g in hk if not low[g]]
    if len(keep) >= 3:
        logc = np.log2(np.maximum(c.loc[keep].to_numpy(), 1.0))
        resid = logc - logc.mean(axis=0)
        sd = pd.Series(resid.std(axis=1, ddof=1), index=keep)
        q1, q3 = np.percentile(sd, [25, 75])
        fence = q3 + HK_FENCE_IQR * (q3 - q1)
        for g in sd.index[sd > fence]:
            out[g] = f"unstable: SD of geometric-mean-normalised log2 count {sd[g]:.3g} > Q3 + 3 IQR ({fence:.3g})"
        keep = [g for g in keep if g not in out]
    if len(keep) < 2:
        raise LaneQcError(f"only {len(keep)} housekeeping gene(s) pass the screen ({out}); cannot normalise on them")
    return keep, out


def run_lane_qc(paths: list[str], settings: dict | None, dest) -> dict:
    """The lane_qc rule: read the RCC files, write the lane QC table (results/{ds}/qc/lanes.tsv)."""
    rset = combine(read_rcc_files(list(paths)))
    table = lane_qc(rset.counts, rset.probes, rset.lanes, settings)
    files.write_tsv(table, dest)
    return {"lanes": int(len(table)), "flagged": table.loc[table["flag"], "sample"].tolist()}
