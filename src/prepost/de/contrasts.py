"""Named contrasts: which samples, which design matrix, which contrast vector.

A contrast is built from the sample sheet written by prepare (columns ``sample``, ``patient``,
``timepoint`` pre/post, ``response`` responder/non_responder/NaN, ``in_pair`` and, when
present, ``usable``) so the same definition drives the design check at prepare time
(:func:`validate_contrasts`) and the model fit (:func:`run_contrast`).

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
from scipy import stats

CONTRASTS = (
    "post_vs_pre",
    "responder_vs_non_responder_pre",
    "post_vs_pre_responder",
    "post_vs_pre_non_responder",
    "interaction",
)
PAIRED = {"post_vs_pre", "post_vs_pre_responder", "post_vs_pre_non_responder", "interaction"}
GROUPED = ("post_vs_pre_responder", "post_vs_pre_non_responder", "interaction")  # nb fits
CHECK_COLUMNS = ["n_pairs", "n_up", "n_down", "paired_t_p", "wilcoxon_p"]
RESPONSES = ("responder", "non_responder")
MIN_PER_GROUP = 2
MIN_PAIRS = 3  # paired contrasts: pairs in the model (as pairing.MIN_PAIRS for the dataset)
SHRINK = ("none", "apeglm")

log = logging.getLogger(__name__)


class ContrastError(ValueError):
    """A contrast that cannot be built or estimated for a dataset."""


@dataclass
class ContrastSpec:
    """Everything a model needs for one contrast of one dataset.

    samples: sheet rows used (index = sample id; patient, timepoint, response), in design order.
    design: samples x named coefficients (float). contrast: weights over design columns.
    pairs: for post-vs-pre contrasts, the pairs whose paired cross-check is reported
    (index patient; columns pre, post = sample ids); None otherwise.
    """

    dataset: str
    name: str
    samples: pd.DataFrame
    design: pd.DataFrame
    contrast: pd.Series
    pairs: pd.DataFrame | None = None
    meaning: str = ""
    summary: dict = field(default_factory=dict)


def contrast_names() -> list[str]:
    """The contrast names a config may list (for the schema's enum)."""
    return list(CONTRASTS)


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
) -> ContrastSpec:
    """Samples, design matrix and contrast vector of contrast ``name`` (see module doc).

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
    pairs = None
    if name == "responder_vs_non_responder_pre":
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
        if name == "post_vs_pre":
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
            if name == "interaction":
                for grp in RESPONSES:
                    _need(n_grp[grp], f"complete pairs of {grp}s", dataset, name, min_per_group)
                design = base
                design["timepoint[post]"] = post
                tested = "timepoint[post]:response[responder]"
                design[tested] = post * (rows["response"] == "responder").to_numpy(float)
                meaning = "(post - pre) in responders minus (post - pre) in non-responders"
            else:
                grp = "responder" if name == "post_vs_pre_responder" else "non_responder"
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
    if name != "post_vs_pre":  # group sizes: patients (paired) or samples (unpaired)
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
    sheet: pd.DataFrame, contrasts, dataset: str, *, available=None, covariates=None
) -> dict:
    """Build every configured contrast (fails fast with ContrastError); return per-contrast
    summaries (samples, coefficients, df_residual, pairs, group sizes) for prepare.json."""
    return {
        name: build_contrast(sheet, name, dataset, available=available, covariates=covariates).summary
        for name in contrasts
    }


def paired_checks(values: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Per gene, on log-scale values: post - pre differences d of each pair, then
    n_pairs (finite d), n_up (d > 0), n_down (d < 0), the paired t-test p (as
    scipy.stats.ttest_rel / R t.test(paired=TRUE), NaN pairs omitted) and the Wilcoxon
    signed-rank p as R's wilcox.test(paired=TRUE): zero differences dropped, exact null
    distribution when n <= 50 without ties or zeros, else the normal approximation with tie
    correction and continuity correction (scipy.stats.wilcoxon with the method set
    explicitly: its "auto" would run a permutation test on small tied data, random beyond
    13 pairs). All differences zero: NaN. Genes are grouped by missingness pattern so each
    pattern is one vectorised call."""
    pre = values[list(pairs["pre"])].to_numpy(float)
    post = values[list(pairs["post"])].to_numpy(float)
    d = post - pre
    ok = np.isfinite(d)
    n = ok.sum(axis=1)
    dz = np.where(ok, d, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = dz.sum(axis=1) / n
        var = np.where(ok, (d - mean[:, None]) ** 2, 0.0).sum(axis=1) / (n - 1)
        t = mean / np.sqrt(var / n)
        p_t = np.where(n >= 2, 2 * stats.t.sf(np.abs(t), n - 1), np.nan)
    p_w = np.full(len(d), np.nan)
    patterns, inverse = np.unique(ok, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)
    for k, obs in enumerate(patterns):  # one vectorised call per missingness pattern and method
        rows = np.flatnonzero(inverse == k)
        sub = d[np.ix_(rows, np.flatnonzero(obs))]
        if sub.shape[1] == 0:
            continue
        srt = np.sort(np.abs(sub), axis=1)
        nonzero = (sub != 0).sum(axis=1)
        tied = (srt == 0).any(axis=1) | (np.diff(srt, axis=1) == 0).any(axis=1)
        exact = ~tied & (nonzero <= 50)
        for sel, method in ((exact, "exact"), (~exact & (nonzero > 0), "asymptotic")):
            if sel.any():
                with np.errstate(invalid="ignore", divide="ignore"):
                    res = stats.wilcoxon(sub[sel], axis=1, method=method, correction=True)
                p_w[rows[sel]] = res.pvalue
    return pd.DataFrame(
        {
            "n_pairs": n,
            "n_up": (ok & (d > 0)).sum(axis=1),
            "n_down": (ok & (d < 0)).sum(axis=1),
            "paired_t_p": p_t,
            "wilcoxon_p": p_w,
        },
        index=values.index.astype(str),
    )


def run_contrast(
    data: pd.DataFrame,
    values: str,
    sheet: pd.DataFrame,
    name: str,
    dataset: str = "dataset",
    *,
    n_cpus: int = 1,
    covariates: list[str] | None = None,
    lfc_shrink: str = "none",
) -> pd.DataFrame:
    """DE table of one contrast: DESeq2 for ``values == "counts"``, else the moderated t on
    log2 values; paired contrasts get the cross-check columns (CHECK_COLUMNS) appended. For
    counts the cross-check uses log2(normalised count + 1) with the DESeq2 size factors of the
    fit. Counts without covariates go to prepost.de.nb for post_vs_pre and, when lfc_shrink is
    "none", for the within-group, interaction and unpaired responder contrasts; everything else
    to pydeseq2 (and
    to it as well when nb's parametric dispersion trend fails). ``lfc_shrink="apeglm"``
    (counts only) adds ``log2fc_shrunk`` (apeGLM prior: nb's own MAP for post_vs_pre,
    pydeseq2's lfc_shrink otherwise; p-values unchanged, as DESeq2's lfcShrink)."""
    if lfc_shrink not in SHRINK:
        raise ContrastError(f"dataset {dataset!r}: lfc_shrink {lfc_shrink!r}; expected one of {list(SHRINK)}")
    spec = build_contrast(sheet, name, dataset, available=data.columns, covariates=covariates)
    sub = data[list(spec.samples.index)]
    if values == "counts":
        table = None
        if name == "post_vs_pre" and not spec.summary.get("covariates"):
            # One pre and one post sample per patient, no covariate: the vectorised DESeq2 of
            # prepost.de.nb (equal to DESeq2 1.38 to r > 0.9999999 in log2FC; benchmarks/de).
            # Covariates go through pydeseq2 (general designs).
            from prepost.de import nb

            try:
                table = nb.fast_paired_deseq2(
                    sub, spec.samples, n_cpus=n_cpus, lfc_shrink=lfc_shrink
                )
            except ArithmeticError as err:  # parametric trend failed: pydeseq2's local fit
                log.info("dataset %r, contrast %r: %s; using pydeseq2", dataset, name, err)
        elif name in GROUPED and not spec.summary.get("covariates") and lfc_shrink == "none":
            # ~ patient + post:non_responder + post:responder: X'WX splits into one arrow
            # block per response group, so prepost.de.nb fits it vectorised as well (equal to
            # DESeq2 1.38, tests/test_nb.py). With one group only the design is the plain
            # paired one. apeglm shrinkage of these coefficients stays with pydeseq2.
            from prepost.de import nb

            groups = sorted(spec.samples["response"].unique())
            try:
                if len(groups) == 1:
                    table = nb.fast_paired_deseq2(sub, spec.samples, n_cpus=n_cpus)
                else:
                    table = nb.fast_grouped_paired_deseq2(sub, spec.samples, n_cpus=n_cpus)[name]
            except ArithmeticError as err:  # parametric trend failed: pydeseq2's local fit
                log.info("dataset %r, contrast %r: %s; using pydeseq2", dataset, name, err)
        elif name == "responder_vs_non_responder_pre" and not spec.summary.get("covariates") and lfc_shrink == "none":
            # ~ response on pre samples: X'WX is diagonal in the cell-means basis, so
            # prepost.de.nb fits it vectorised too, with DESeq2's Cook's outlier replacement and
            # filtering (equal to DESeq2 1.38, tests/test_nb.py). Covariates and apeglm
            # shrinkage stay with pydeseq2.
            from prepost.de import nb

            try:
                table = nb.fast_two_group_deseq2(sub, spec.samples, n_cpus=n_cpus)
            except ArithmeticError as err:  # parametric trend failed: pydeseq2's local fit
                log.info("dataset %r, contrast %r: %s; using pydeseq2", dataset, name, err)
        if table is not None:
            from prepost import stats as shared

            sf = shared.size_factors(shared.count_values(sub))
        if table is None:
            from prepost.de.general import deseq2

            table, size_factors = deseq2(
                sub,
                spec.samples,
                spec.design,
                spec.contrast,
                n_cpus=n_cpus,
                return_size_factors=True,
                lfc_shrink=lfc_shrink,
            )
            sf = size_factors[sub.columns].to_numpy()
        logv = np.log2(sub / sf + 1)
    else:
        if lfc_shrink != "none":
            log.info("dataset %r: lfc_shrink applies to counts only; ignored for log2 values", dataset)
        from prepost.de.limma import moderated_t

        table = moderated_t(sub, spec.design, spec.contrast)
        logv = sub
    if spec.pairs is not None:
        checks = paired_checks(logv, spec.pairs)
        table = table.join(checks, on="gene")
    return table
