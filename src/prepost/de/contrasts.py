"""Named contrasts: which samples, which design matrix, which contrast vector.

A contrast is built from the sample sheet written by prepare (columns ``sample``, ``patient``,
``timepoint`` pre/post, ``response`` responder/non_responder/NaN, ``in_pair`` and, when
present, ``usable``) so the same definition drives the design check at prepare time
(:func:`validate_contrasts`) and the model fit (prepost.de.fit.fit_contrast).

Contrasts (sign: positive log2fc means higher in the first-named group / after treatment):

``post_vs_pre``
    Complete pairs, ``~ patient + timepoint``; coefficient ``timepoint[post]``.
``responder_vs_non_responder_pre``
    Unpaired: every usable pre-treatment sample with a known response, including pre samples
    of patients without a post sample; ``~ response`` with non_responder as reference, so a
    positive log2fc means higher in responders.
``post_vs_pre_responder`` / ``post_vs_pre_non_responder``
    Post vs pre within one response group. The model is fitted on all complete pairs with a
    known response, ``~ patient + post:non_responder + post:responder`` (limma User's Guide
    9.7, patients nested in groups), and the group's own coefficient is tested. Patient
    blocking keeps the test paired, and the residual variance is pooled over both groups: more
    residual df than fitting each group alone, as limma users do. A group without pairs has
    no column (then the model is the group-only paired model).
``interaction``
    Does post-pre differ between responders and non-responders:
    ``~ patient + timepoint + timepoint:response`` on complete pairs with a known response;
    coefficient ``timepoint[post]:response[responder]``, positive = larger increase (or
    smaller decrease) in responders. The response main effect is absent because it is
    constant within patient (absorbed by the patient block).

Patient and response columns are treatment-coded, the first patient in sorted order as the
baseline (as R's ``factor``). Optional ``covariates`` (sample sheet columns, i.e. GEO fields
and characteristics keys as prepare writes them to samples.tsv, e.g. ``batch`` or ``age``) are
appended to any design (``~ patient + covariates + timepoint``): numeric columns as is, others
treatment-coded with the first sorted level as baseline. In a paired design the patient block
already absorbs everything constant within a patient, so a covariate column constant within
every patient (age, site; or one level of a batch that only whole patients have) is not
estimable: it is dropped, logged and listed in the summary (``covariates_dropped``), which is
what limma does with an aliased column and what R's DESeq2 refuses with "not full rank". Any
other aliasing (e.g. a covariate confounded with response in the unpaired contrast) is an
error naming the dataset and the contrast. A covariate missing for a used sample is an error.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prepost.vocabulary import (
    BLOCK, CONTRASTS, DROP, FIXED_BLOCK, INTERACTION, RANDOM_EFFECT, UNPAIRED, UNPAIRED_MODEL, MIN_PAIRS, MIN_PER_GROUP, PAIRED, PAIRED_GROUP, POST_VS_PRE,
    RESPONDER_VS_NON_RESPONDER_PRE, RESPONSES,
)


log = logging.getLogger(__name__)


class ContrastError(ValueError):
    """A contrast that cannot be built or estimated for a dataset."""


@dataclass
class ContrastSpec:
    """Everything a model needs for one contrast of one dataset.

    samples: sheet rows used (index = sample id; patient, timepoint, response), in design order.
    design: samples x named coefficients (float). contrast: weights over design columns.
    pairs: for post-vs-pre contrasts, the pairs whose paired cross-check is reported
    (index patient; columns pre, post = sample ids); None otherwise. block: with
    ``pairing.unpaired: block``, the patient of each sample (a random effect, limma's
    duplicateCorrelation; prepost.de.mixed); None when the patient is a fixed block or absent.
    """

    dataset: str
    name: str
    samples: pd.DataFrame
    design: pd.DataFrame
    contrast: pd.Series
    pairs: pd.DataFrame | None = None
    meaning: str = ""
    summary: dict = field(default_factory=dict)
    block: pd.Series | None = None  # patient per sample when the patient is a random effect


def _as_bool(values: pd.Series) -> pd.Series:
    if values.dtype == bool:
        return values
    return values.astype(str).str.strip().str.lower().isin(["true", "1", "yes"])


def _normalise_sheet(sheet: pd.DataFrame, dataset: str) -> pd.DataFrame:
    """Sheet indexed by sample id with str patient/timepoint, response NaN when unknown."""
    df = sheet.copy()
    if "sample" in df.columns:
        df = df.set_index("sample")
    df.index = df.index.astype(str)
    missing = [c for c in ("patient", "timepoint", "in_pair") if c not in df.columns]
    if missing:
        raise ContrastError(
            f"dataset {dataset!r}: sample sheet lacks column(s) {missing}; expected sample, "
            "patient, timepoint, response, in_pair"
        )
    if df.index.has_duplicates:
        dup = sorted(df.index[df.index.duplicated()].unique())
        raise ContrastError(f"dataset {dataset!r}: duplicated sample id(s) {dup} in the sheet")
    df["in_pair"] = _as_bool(df["in_pair"])
    # 'usable' (not excluded, has data) lets unpaired samples in; without it only pairs are used
    df["usable"] = _as_bool(df["usable"]) if "usable" in df.columns else df["in_pair"]
    df["usable"] = df["usable"] | df["in_pair"]
    df["patient"] = df["patient"].astype("string")
    df["timepoint"] = df["timepoint"].astype("string")
    if "response" not in df.columns:
        df["response"] = pd.NA
    resp = df["response"].astype("string").str.strip()
    resp = resp.mask(resp.isin(["", "unknown", "nan", "NA", "<NA>"]))
    bad = sorted(set(resp.dropna()) - set(RESPONSES))
    if bad:
        raise ContrastError(
            f"dataset {dataset!r}: response value(s) {bad} in the sample sheet; expected "
            f"responder, non_responder or empty"
        )
    df["response"] = resp
    return df


def _paired_rows(df: pd.DataFrame) -> pd.DataFrame:
    """Complete pairs ordered by patient then pre, post (as pairing.paired_samples)."""
    kept = df[df["in_pair"] & df["usable"]].copy()
    kept["_t"] = (kept["timepoint"] == "post").astype(int)
    kept = kept.reset_index(names="sample").sort_values(["patient", "_t", "sample"])
    return kept.drop(columns="_t").set_index("sample")


def _pairs_table(rows: pd.DataFrame) -> pd.DataFrame:
    wide = rows.reset_index().pivot(index="patient", columns="timepoint", values="sample")
    return wide[["pre", "post"]].sort_index()


def _patient_block(rows: pd.DataFrame) -> pd.DataFrame:
    patients = sorted(rows["patient"].unique())
    block = {f"patient[{p}]": (rows["patient"] == p).to_numpy(float) for p in patients[1:]}
    return pd.DataFrame(block, index=rows.index)


def _covariate_columns(
    rows: pd.DataFrame, covariates: list[str], sheet: pd.DataFrame, dataset: str, paired: bool
) -> tuple[pd.DataFrame, dict]:
    """Covariate design columns (numeric as is, categorical treatment-coded) and, for paired
    designs, the columns dropped because they are constant within every patient."""
    out, dropped = {}, {}
    for cov in covariates:
        if cov not in sheet.columns:
            cols = [c for c in sheet.columns if c not in ("in_pair", "usable")]
            raise ContrastError(
                f"dataset {dataset!r}: covariate {cov!r} is not a sample sheet column; "
                f"samples.tsv has {cols}"
            )
        if cov in ("patient", "timepoint", "response", "sample"):
            raise ContrastError(
                f"dataset {dataset!r}: covariate {cov!r} is part of the contrasts' designs "
                "already; list other sample sheet columns"
            )
        values = sheet.loc[rows.index, cov]
        blank = values.isna() | values.astype(str).str.strip().isin(["", "NA", "nan", "<NA>"])
        if blank.any():
            bad = list(values.index[blank][:5])
            raise ContrastError(
                f"dataset {dataset!r}: covariate {cov!r} is missing for sample(s) {bad}; "
                "fill it in or remove the covariate"
            )
        num = pd.to_numeric(values, errors="coerce")
        if num.notna().all():
            cols = {cov: num.to_numpy(float)}
        else:
            text = values.astype(str).str.strip()
            levels = sorted(text.unique())
            cols = {f"{cov}[{lev}]": (text == lev).to_numpy(float) for lev in levels[1:]}
            if len(levels) == 1:
                dropped[cov] = f"a single value ({levels[0]!r}) in the samples used"
        for name, col in cols.items():
            within = pd.Series(col, index=rows.index).groupby(rows["patient"].to_numpy()).nunique()
            if paired and (within <= 1).all():
                dropped[name] = "constant within every patient (absorbed by the patient block)"
            else:
                out[name] = col
    return pd.DataFrame(out, index=rows.index), dropped


def _need(n: int, what: str, dataset: str, name: str, minimum: int = MIN_PER_GROUP) -> None:
    if n < minimum:
        raise ContrastError(
            f"dataset {dataset!r}, contrast {name!r}: {n} {what}; at least {minimum} are needed"
        )


def _no_response(df: pd.DataFrame, dataset: str, name: str) -> None:
    if df["response"].isna().all():
        raise ContrastError(
            f"dataset {dataset!r}, contrast {name!r}: the sample sheet has no response data; "
            "set pairing.response (field and map to responder/non_responder) in the config "
            "or remove the contrast"
        )


def build_contrast(
    sheet: pd.DataFrame,
    name: str,
    dataset: str = "dataset",
    *,
    available=None,
    covariates: list[str] | None = None,
    min_per_group: int = MIN_PER_GROUP,
    min_pairs: int = MIN_PAIRS,
    unpaired: str = DROP,
) -> ContrastSpec:
    """Samples, design matrix and contrast vector of contrast ``name`` (see module doc).

    unpaired: the dataset's ``pairing.unpaired``. ``drop`` (default): paired contrasts use the
    complete pairs with the patient as a fixed block. ``block``: they use every usable sample
    of the two timepoints, patients paired or not, with the patient as a random effect
    (spec.block; see block_contrast).

    available: sample ids that have expression data (e.g. the matrix columns); others are not
    used. Paired contrasts need min_pairs pairs in the model, and every group min_per_group
    pairs (paired) or samples (unpaired). Raises ContrastError naming the dataset, the
    contrast and the reason.
    """
    if name not in CONTRASTS:
        raise ContrastError(
            f"dataset {dataset!r}: unknown contrast {name!r}; expected one of {list(CONTRASTS)}"
        )
    df = _normalise_sheet(sheet, dataset)
    if available is not None:
        have = set(map(str, available))
        df["usable"] &= df.index.isin(have)
        df["in_pair"] &= df.index.isin(have)
        # a pair whose partner has no data is no pair
        n_tp = df[df["in_pair"]].groupby("patient")["timepoint"].transform("nunique")
        df.loc[n_tp.index[n_tp < 2], "in_pair"] = False
    if unpaired not in UNPAIRED:
        raise ContrastError(
            f"dataset {dataset!r}: pairing.unpaired is {unpaired!r}; expected one of {list(UNPAIRED)}"
        )
    if unpaired == BLOCK and name in PAIRED:
        return block_contrast(df, name, dataset, covariates=covariates,
                              min_per_group=min_per_group, min_pairs=min_pairs)
    pairs = None
    if name == RESPONDER_VS_NON_RESPONDER_PRE:
        _no_response(df, dataset, name)
        rows = df[df["usable"] & (df["timepoint"] == "pre") & df["response"].notna()]
        rows = rows.sort_values(["response", "patient"]).copy()
        for grp in RESPONSES:
            _need(int((rows["response"] == grp).sum()), f"pre-treatment {grp} samples", dataset, name, min_per_group)
        design = pd.DataFrame(
            {"Intercept": 1.0, "response[responder]": (rows["response"] == "responder").to_numpy(float)},
            index=rows.index,
        )
        tested = "response[responder]"
        meaning = "log2 expression in responders minus non-responders, pre-treatment samples"
    else:
        rows = _paired_rows(df)
        if name == POST_VS_PRE:
            _need(rows["patient"].nunique(), "complete pre/post pairs", dataset, name, min_pairs)
            design = pd.concat(
                [pd.DataFrame({"Intercept": 1.0}, index=rows.index), _patient_block(rows)], axis=1
            )
            design["timepoint[post]"] = (rows["timepoint"] == "post").to_numpy(float)
            tested = "timepoint[post]"
            pairs = _pairs_table(rows)
            meaning = "post minus pre log2 expression, within patient"
        else:
            _no_response(df, dataset, name)
            rows = rows[rows["response"].notna()]
            n_grp = {g: rows.loc[rows["response"] == g, "patient"].nunique() for g in RESPONSES}
            _need(sum(n_grp.values()), "complete pairs with a known response", dataset, name, min_pairs)
            post = (rows["timepoint"] == "post").to_numpy(float)
            base = pd.concat(
                [pd.DataFrame({"Intercept": 1.0}, index=rows.index), _patient_block(rows)], axis=1
            )
            if name == INTERACTION:
                for grp in RESPONSES:
                    _need(n_grp[grp], f"complete pairs of {grp}s", dataset, name, min_per_group)
                design = base
                design["timepoint[post]"] = post
                tested = "timepoint[post]:response[responder]"
                design[tested] = post * (rows["response"] == "responder").to_numpy(float)
                meaning = "(post - pre) in responders minus (post - pre) in non-responders"
            else:
                grp = PAIRED_GROUP[name]
                _need(n_grp[grp], f"complete pairs of {grp}s", dataset, name, min_per_group)
                design = base
                for g in ("non_responder", "responder"):
                    if n_grp[g] > 0:
                        design[f"timepoint[post]:response[{g}]"] = post * (
                            rows["response"] == g
                        ).to_numpy(float)
                tested = f"timepoint[post]:response[{grp}]"
                meaning = f"post minus pre log2 expression within patient, {grp}s"
                # the model uses every pair with a known response; the check only the group's
                pairs = _pairs_table(rows[rows["response"] == grp])
    dropped: dict = {}
    if covariates:
        extra, dropped = _covariate_columns(rows, covariates, df, dataset, name in PAIRED)
        for col, why in dropped.items():
            log.info("dataset %r, contrast %r: covariate column %r dropped: %s", dataset, name, col, why)
        design = pd.concat([design, extra], axis=1)
    x = design.to_numpy(float)
    rank = int(np.linalg.matrix_rank(x)) if x.size else 0
    df_resid = x.shape[0] - rank
    if rank < x.shape[1] or df_resid < 1:
        raise ContrastError(
            f"dataset {dataset!r}, contrast {name!r}: design of {x.shape[0]} samples has rank "
            f"{rank} for {x.shape[1]} coefficients and {df_resid} residual df (rank-deficient "
            "or saturated); add samples, or remove the contrast or an aliased covariate"
        )
    contrast = pd.Series(0.0, index=design.columns)
    contrast[tested] = 1.0
    summary = {
        "samples": int(len(rows)),
        "coefficients": int(x.shape[1]),
        "df_residual": int(df_resid),
    }
    if covariates:
        summary["covariates"] = list(extra.columns)
        summary["covariates_dropped"] = dropped
    if name in PAIRED:
        summary["pairs"] = int(rows["patient"].nunique())
    summary.update(_patient_summary(df, rows, name, dataset))
    if name != POST_VS_PRE:  # group sizes: patients (paired) or samples (unpaired)
        units = rows.drop_duplicates("patient") if name in PAIRED else rows
        summary.update({f"n_{g}": int((units["response"] == g).sum()) for g in RESPONSES})
    return ContrastSpec(
        dataset=dataset,
        name=name,
        samples=rows[["patient", "timepoint", "response"]].copy(),
        design=design.astype(float),
        contrast=contrast,
        pairs=pairs,
        meaning=meaning,
        summary=summary,
    )


def validate_contrasts(
    sheet: pd.DataFrame, contrasts, dataset: str, *, available=None, covariates=None,
    unpaired: str = DROP,
) -> dict:
    """Build every configured contrast (fails fast with ContrastError); return per-contrast
    summaries (samples, coefficients, df_residual, pairs, group sizes, how patients are
    modelled) for prepare.json."""
    return {
        name: build_contrast(
            sheet, name, dataset, available=available, covariates=covariates, unpaired=unpaired
        ).summary
        for name in contrasts
    }


def _unpaired_candidates(df: pd.DataFrame, timepoints=("pre", "post")) -> pd.DataFrame:
    """Usable samples of the two timepoints whose patient has only one of them."""
    live = df[df["usable"] & df["timepoint"].isin(timepoints)]
    n_tp = live.groupby("patient")["timepoint"].transform("nunique")
    return live[n_tp < 2]


def _patient_summary(df: pd.DataFrame, rows: pd.DataFrame, name: str, dataset: str) -> dict:
    """The fit record's account of the patients (pairing.unpaired: drop): who entered, how
    the patient was modelled and why."""
    per_patient = rows.groupby("patient").size()
    out = {
        "samples_entered": int(len(rows)),
        "patients_paired": int((per_patient >= 2).sum()),
        "patients_unpaired": int((per_patient == 1).sum()),
    }
    if name in PAIRED:
        left = _unpaired_candidates(df)
        if name != POST_VS_PRE:
            left = left[left["response"].notna()]
        out["patient_model"] = FIXED_BLOCK
        out["patient_model_reason"] = (
            "paired design on the patients with both samples: the patient is a fixed block, so "
            "each patient is compared with themself"
            + (f"; {len(left)} sample(s) of patients with one sample left out "
               "(pairing.unpaired: drop)" if len(left) else "; no patient has only one sample")
        )
    else:
        out["patient_model"] = UNPAIRED_MODEL
        out["patient_model_reason"] = (
            "one sample per patient (pre-treatment samples of two response groups): no "
            "within-patient correlation to model"
        )
    out["unpaired_samples_left_out"] = int(len(_unpaired_candidates(df))) if name in PAIRED else 0
    return out


def block_contrast(
    df: pd.DataFrame, name: str, dataset: str, *, covariates=None,
    min_per_group: int = MIN_PER_GROUP, min_pairs: int = MIN_PAIRS,
) -> ContrastSpec:
    """A paired contrast with ``pairing.unpaired: block``: every usable pre and post sample
    (grouped contrasts: with a known response), the patient as a random effect (limma's
    duplicateCorrelation + lmFit(block=); prepost.de.mixed). Designs (no patient columns):

    - post_vs_pre: ``~ timepoint``, coefficient ``timepoint[post]``;
    - post_vs_pre_responder / _non_responder: ``~ response + post:non_responder +
      post:responder`` (limma User's Guide 9.7 with the patient as a random effect), the
      group's own coefficient;
    - interaction: ``~ response + timepoint + timepoint:response``, coefficient
      ``timepoint[post]:response[responder]``.

    Covariates are kept even when constant within patients (the patient is no longer a fixed
    block). Needs min_pairs complete pairs (the within-patient correlation is estimated from
    them) and, per response group, min_per_group patients."""
    rows = df[df["usable"] & df["timepoint"].isin(["pre", "post"])].copy()
    if name != POST_VS_PRE:
        _no_response(df, dataset, name)
        rows = rows[rows["response"].notna()]
    rows["_t"] = (rows["timepoint"] == "post").astype(int)
    rows = rows.reset_index(names="sample").sort_values(["patient", "_t", "sample"])
    rows = rows.drop(columns="_t").set_index("sample")
    per_patient = rows.groupby("patient")["timepoint"].nunique()
    paired = per_patient.index[per_patient == 2]
    _need(len(paired), "complete pre/post pairs (the within-patient correlation needs them)",
          dataset, name, min_pairs)
    post = (rows["timepoint"] == "post").to_numpy(float)
    design = pd.DataFrame({"Intercept": 1.0}, index=rows.index)
    resp = rows["response"]
    pairs = _pairs_table(rows[rows["patient"].isin(paired)])
    if name == POST_VS_PRE:
        design["timepoint[post]"] = post
        tested = "timepoint[post]"
        meaning = "post minus pre log2 expression, patient as a random effect"
    else:
        n_grp = {g: rows.loc[resp == g, "patient"].nunique() for g in RESPONSES}
        if name == INTERACTION:
            for grp in RESPONSES:
                _need(n_grp[grp], f"patients who are {grp}s", dataset, name, min_per_group)
            design["response[responder]"] = (resp == "responder").to_numpy(float)
            design["timepoint[post]"] = post
            tested = "timepoint[post]:response[responder]"
            design[tested] = post * (resp == "responder").to_numpy(float)
            meaning = "(post - pre) in responders minus (post - pre) in non-responders"
        else:
            grp = PAIRED_GROUP[name]
            _need(n_grp[grp], f"patients who are {grp}s", dataset, name, min_per_group)
            if all(n_grp[g] > 0 for g in RESPONSES):
                design["response[responder]"] = (resp == "responder").to_numpy(float)
            for g in ("non_responder", "responder"):
                if n_grp[g] > 0:
                    design[f"timepoint[post]:response[{g}]"] = post * (resp == g).to_numpy(float)
            tested = f"timepoint[post]:response[{grp}]"
            meaning = f"post minus pre log2 expression, {grp}s, patient as a random effect"
            pairs = pairs.loc[[p for p in pairs.index if (rows.loc[rows["patient"] == p, "response"] == grp).any()]]
    dropped: dict = {}
    if covariates:
        extra, dropped = _covariate_columns(rows, covariates, df, dataset, paired=False)
        design = pd.concat([design, extra], axis=1)
    x = design.to_numpy(float)
    rank = int(np.linalg.matrix_rank(x))
    df_resid = x.shape[0] - rank
    if rank < x.shape[1] or df_resid < 1:
        raise ContrastError(
            f"dataset {dataset!r}, contrast {name!r}: design of {x.shape[0]} samples has rank "
            f"{rank} for {x.shape[1]} coefficients and {df_resid} residual df (rank-deficient "
            "or saturated); add samples, or remove the contrast or an aliased covariate"
        )
    contrast = pd.Series(0.0, index=design.columns)
    contrast[tested] = 1.0
    n_unpaired = int((per_patient == 1).sum())
    summary = {
        "samples": int(len(rows)),
        "coefficients": int(x.shape[1]),
        "df_residual": int(df_resid),
        "pairs": int(len(paired)),
        "samples_entered": int(len(rows)),
        "patients_paired": int(len(paired)),
        "patients_unpaired": n_unpaired,
        "patient_model": RANDOM_EFFECT,
        "patient_model_reason": (
            "pairing.unpaired: block: every usable sample enters, patients with one sample "
            f"({n_unpaired}) as well as complete pairs ({len(paired)}); the patient is a random "
            "effect whose within-patient correlation is estimated from all genes (limma "
            "duplicateCorrelation), so the pairs stay paired and the unpaired samples add "
            "information"
        ),
        "unpaired_samples_left_out": 0,
    }
    if covariates:
        summary["covariates"] = list(extra.columns)
        summary["covariates_dropped"] = dropped
    if name != POST_VS_PRE:
        units = rows.drop_duplicates("patient")
        summary.update({f"n_{g}": int((units["response"] == g).sum()) for g in RESPONSES})
    return ContrastSpec(
        dataset=dataset, name=name, samples=rows[["patient", "timepoint", "response"]].copy(),
        design=design.astype(float), contrast=contrast, pairs=pairs, meaning=meaning,
        summary=summary, block=rows["patient"].astype(str),
    )
