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
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from prepost.vocabulary import (
    ALL_PATIENTS, BLOCK, POST_VS_PRE_NON_RESPONDER, POST_VS_PRE_RESPONDER, CONTRASTS, DROP, FIXED_BLOCK, INTERACTION, RANDOM_EFFECT, UNPAIRED, UNPAIRED_MODEL, MIN_PAIRS, MIN_PER_GROUP, PAIRED, PAIRED_GROUP, POST_VS_PRE,
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
    kind: str = "paired"  # paired | grouped | interaction | two_group | defined
    reference: str | None = "pre"
    target: str | None = "post"


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


def _deliberately_unpaired(df: pd.DataFrame) -> pd.Series:
    """Pre/post samples taken out of their pair although their patient has both (QC: an
    excluded partner or a doubted pair identity): they stay out of every paired contrast."""
    pp = df[df["usable"] & df["timepoint"].isin(["pre", "post"])]
    both = pp.groupby("patient")["timepoint"].transform("nunique") == 2
    out = pd.Series(False, index=df.index)
    out[pp.index[both & ~pp["in_pair"]]] = True
    return out


def _paired_rows(df: pd.DataFrame, ref: str = "pre", alt: str = "post") -> pd.DataFrame:
    """Complete (ref, alt) pairs ordered by patient then ref, alt (as pairing.paired_samples).
    pre/post pairs are the sheet's in_pair samples; other levels (on-treatment timepoints)
    pair the usable samples of patients that have both levels."""
    if (ref, alt) == ("pre", "post"):
        kept = df[df["in_pair"] & df["usable"]].copy()
    else:
        live = df[df["usable"] & df["timepoint"].isin([ref, alt]) & ~_deliberately_unpaired(df)]
        n_tp = live.groupby("patient")["timepoint"].transform("nunique")
        kept = live[n_tp == 2].copy()
    kept["_t"] = (kept["timepoint"] == alt).astype(int)
    kept = kept.reset_index(names="sample").sort_values(["patient", "_t", "sample"])
    return kept.drop(columns="_t").set_index("sample")


def _pairs_table(rows: pd.DataFrame, ref: str = "pre", alt: str = "post") -> pd.DataFrame:
    """One row per patient: columns pre (the reference sample) and post (the target sample),
    whatever the two timepoints' names (the paired cross-checks read these two columns)."""
    wide = rows.reset_index().pivot(index="patient", columns="timepoint", values="sample")
    return wide[[ref, alt]].set_axis(["pre", "post"], axis=1).sort_index()


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


NAME_FORM = re.compile(r"([a-z0-9]+)_vs_([a-z0-9]+)(?:_(responder|non_responder|interaction))?")


def parse_contrast(name: str) -> dict | None:
    """A named contrast as a preset: kind (paired | grouped | interaction | two_group), the
    reference and target timepoints and, for grouped, the response group tested. Names:
    the five of vocabulary.CONTRASTS, and for any two ordered timepoints (pairing.timepoint
    .order, e.g. pre, on, post) ``<target>_vs_<reference>`` (paired), with ``_responder`` /
    ``_non_responder`` (within one response group) or ``_interaction`` (responders' change
    minus non-responders'). None when the name has neither form."""
    fixed = {
        POST_VS_PRE: ("paired", "pre", "post", ALL_PATIENTS),
        POST_VS_PRE_RESPONDER: ("grouped", "pre", "post", "responder"),
        POST_VS_PRE_NON_RESPONDER: ("grouped", "pre", "post", "non_responder"),
        INTERACTION: ("interaction", "pre", "post", None),
        RESPONDER_VS_NON_RESPONDER_PRE: ("two_group", "pre", None, None),
    }
    if name in fixed:
        kind, ref, alt, group = fixed[name]
        return {"kind": kind, "reference": ref, "target": alt, "group": group}
    m = NAME_FORM.fullmatch(name)
    if m is None or m.group(1) == m.group(2) or "responder" in (m.group(1), m.group(2)):
        return None
    alt, ref, suffix = m.groups()
    if suffix is None:
        return {"kind": "paired", "reference": ref, "target": alt, "group": ALL_PATIENTS}
    if suffix == "interaction":
        return {"kind": "interaction", "reference": ref, "target": alt, "group": None}
    return {"kind": "grouped", "reference": ref, "target": alt, "group": suffix}


def grouped_name(ref: str, alt: str, group: str) -> str:
    """The name of the within-group contrast of (ref, alt) for one response group."""
    return POST_VS_PRE_RESPONDER.replace("post_vs_pre", f"{alt}_vs_{ref}").replace(
        "responder", group) if (ref, alt) != ("pre", "post") else {
        "responder": POST_VS_PRE_RESPONDER, "non_responder": POST_VS_PRE_NON_RESPONDER}[group]


def is_paired(name: str, definitions: dict | None = None) -> bool:
    """Whether a contrast compares samples within patients (has a paired cross-check)."""
    if definitions and name in definitions:
        return bool(definitions[name].get("block"))
    info = parse_contrast(name)
    return info is not None and info["kind"] != "two_group"


def preset_definition(name: str) -> dict | None:
    """The named contrasts that are filters + one comparison, written as contrasts as data
    (the form a config may declare): ``post_vs_pre`` (and any ``<t>_vs_<r>``) is
    {compare: [timepoint, r, t], block: patient}; ``responder_vs_non_responder_pre`` is
    {samples: {timepoint: pre}, compare: [response, non_responder, responder]}. The grouped and
    interaction contrasts pool both response groups in one model and are presets of their own."""
    info = parse_contrast(name)
    if info is None:
        return None
    if info["kind"] == "paired":
        return {"name": name, "compare": ["timepoint", info["reference"], info["target"]],
                "block": "patient"}
    if info["kind"] == "two_group":
        return {"name": name, "samples": {"timepoint": "pre"},
                "compare": ["response", "non_responder", "responder"]}
    return None


def _levels_present(df: pd.DataFrame, levels, dataset: str, name: str) -> None:
    have = sorted(set(df.loc[df["usable"] | df["in_pair"], "timepoint"].dropna()))
    missing = [lev for lev in levels if lev not in have]
    if missing:
        raise ContrastError(
            f"dataset {dataset!r}, contrast {name!r}: timepoint(s) {missing} have no usable "
            f"sample (timepoints with samples: {have}); map them in pairing.timepoint.map "
            "(and pairing.timepoint.order) or remove the contrast"
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
    definitions: dict | None = None,
) -> ContrastSpec:
    """Samples, design matrix and contrast vector of contrast ``name`` (see module doc).

    unpaired: the dataset's ``pairing.unpaired``. ``drop`` (default): paired contrasts use the
    complete pairs with the patient as a fixed block. ``block``: they use every usable sample
    of the two timepoints, patients paired or not, with the patient as a random effect
    (spec.block; see block_contrast).

    definitions: the dataset's contrasts declared as data ({name: {name, samples, compare,
    block}}; see defined_contrast); a name not among them is a preset (parse_contrast).

    available: sample ids that have expression data (e.g. the matrix columns); others are not
    used. Paired contrasts need min_pairs pairs in the model, and every group min_per_group
    pairs (paired) or samples (unpaired). Raises ContrastError naming the dataset, the
    contrast and the reason.
    """
    info = None if definitions and name in definitions else parse_contrast(name)
    if info is None and not (definitions and name in definitions):
        raise ContrastError(
            f"dataset {dataset!r}: unknown contrast {name!r}; expected one of {list(CONTRASTS)}, "
            "<target>_vs_<reference> of two timepoints (optionally with _responder, "
            "_non_responder or _interaction), or a contrast declared as data (name, samples, "
            "compare, block) in the dataset's contrasts"
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
    if info is None:
        return defined_contrast(df, definitions[name], dataset, covariates=covariates,
                                min_per_group=min_per_group, min_pairs=min_pairs, unpaired=unpaired)
    kind, ref, alt = info["kind"], info["reference"], info["target"]
    _levels_present(df, [lev for lev in (ref, alt) if lev], dataset, name)
    if unpaired == BLOCK and kind != "two_group":
        return block_contrast(df, name, dataset, covariates=covariates,
                              min_per_group=min_per_group, min_pairs=min_pairs)
    pairs = None
    tp = f"timepoint[{alt}]"
    if kind == "two_group":
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
        rows = _paired_rows(df, ref, alt)
        if kind == "paired":
            _need(rows["patient"].nunique(), f"complete {ref}/{alt} pairs", dataset, name, min_pairs)
            design = pd.concat(
                [pd.DataFrame({"Intercept": 1.0}, index=rows.index), _patient_block(rows)], axis=1
            )
            design[tp] = (rows["timepoint"] == alt).to_numpy(float)
            tested = tp
            pairs = _pairs_table(rows, ref, alt)
            meaning = f"{alt} minus {ref} log2 expression, within patient"
        else:
            _no_response(df, dataset, name)
            rows = rows[rows["response"].notna()]
            n_grp = {g: rows.loc[rows["response"] == g, "patient"].nunique() for g in RESPONSES}
            _need(sum(n_grp.values()), "complete pairs with a known response", dataset, name, min_pairs)
            post = (rows["timepoint"] == alt).to_numpy(float)
            base = pd.concat(
                [pd.DataFrame({"Intercept": 1.0}, index=rows.index), _patient_block(rows)], axis=1
            )
            if kind == "interaction":
                for grp in RESPONSES:
                    _need(n_grp[grp], f"complete pairs of {grp}s", dataset, name, min_per_group)
                design = base
                design[tp] = post
                tested = f"{tp}:response[responder]"
                design[tested] = post * (rows["response"] == "responder").to_numpy(float)
                meaning = f"({alt} - {ref}) in responders minus ({alt} - {ref}) in non-responders"
            else:
                grp = info["group"]
                _need(n_grp[grp], f"complete pairs of {grp}s", dataset, name, min_per_group)
                design = base
                for g in ("non_responder", "responder"):
                    if n_grp[g] > 0:
                        design[f"{tp}:response[{g}]"] = post * (rows["response"] == g).to_numpy(float)
                tested = f"{tp}:response[{grp}]"
                meaning = f"{alt} minus {ref} log2 expression within patient, {grp}s"
                # the model uses every pair with a known response; the check only the group's
                pairs = _pairs_table(rows[rows["response"] == grp], ref, alt)
    dropped: dict = {}
    if covariates:
        extra, dropped = _covariate_columns(rows, covariates, df, dataset, kind != "two_group")
        for col, why in dropped.items():
            log.info("dataset %r, contrast %r: covariate column %r dropped: %s", dataset, name, col, why)
        design = pd.concat([design, extra], axis=1)
    _check_rank(design, dataset, name)
    x = design.to_numpy(float)
    contrast = pd.Series(0.0, index=design.columns)
    contrast[tested] = 1.0
    summary = {
        "samples": int(len(rows)),
        "coefficients": int(x.shape[1]),
        "df_residual": int(x.shape[0] - np.linalg.matrix_rank(x)),
    }
    if covariates:
        summary["covariates"] = list(extra.columns)
        summary["covariates_dropped"] = dropped
    if kind != "two_group":
        summary["pairs"] = int(rows["patient"].nunique())
    summary.update(_patient_summary(df, rows, kind, ref, alt))
    if kind != "paired":  # group sizes: patients (paired) or samples (unpaired)
        units = rows.drop_duplicates("patient") if kind != "two_group" else rows
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
        kind=kind,
        reference=ref,
        target=alt,
    )


def _check_rank(design: pd.DataFrame, dataset: str, name: str) -> None:
    x = design.to_numpy(float)
    rank = int(np.linalg.matrix_rank(x)) if x.size else 0
    df_resid = x.shape[0] - rank
    if rank < x.shape[1] or df_resid < 1:
        raise ContrastError(
            f"dataset {dataset!r}, contrast {name!r}: design of {x.shape[0]} samples has rank "
            f"{rank} for {x.shape[1]} coefficients and {df_resid} residual df (rank-deficient "
            "or saturated); add samples, or remove the contrast or an aliased covariate"
        )


def validate_contrasts(
    sheet: pd.DataFrame, contrasts, dataset: str, *, available=None, covariates=None,
    unpaired: str = DROP,
) -> dict:
    """Build every configured contrast (fails fast with ContrastError); return per-contrast
    summaries (samples, coefficients, df_residual, pairs, group sizes, how patients are
    modelled) for prepare.json. ``contrasts``: names, or the config's list of names and
    contrasts declared as data."""
    names, definitions = split_contrasts(contrasts)
    return {
        name: build_contrast(
            sheet, name, dataset, available=available, covariates=covariates, unpaired=unpaired,
            definitions=definitions,
        ).summary
        for name in names
    }


def split_contrasts(entries) -> tuple[list[str], dict]:
    """A dataset's ``contrasts`` config (names and declared contrasts) -> (names in order,
    {name: declaration} of the declared ones). A declared name that is also a preset or
    given twice is an error."""
    names, definitions = [], {}
    for entry in entries or []:
        if isinstance(entry, dict):
            name = entry.get("name")
            if not name:
                raise ContrastError(f"a contrast declared as data has no name: {entry}")
            if parse_contrast(name) is not None:
                raise ContrastError(
                    f"contrast {name!r} is declared as data but is also a named contrast; "
                    "give the declaration another name"
                )
            definitions[name] = entry
        else:
            name = str(entry)
        if name in names:
            raise ContrastError(f"contrast {name!r} is listed twice")
        names.append(name)
    return names, definitions


def _unpaired_candidates(df: pd.DataFrame, timepoints=("pre", "post")) -> pd.DataFrame:
    """Usable samples of the two timepoints whose patient has only one of them."""
    live = df[df["usable"] & df["timepoint"].isin(list(timepoints)) & ~_deliberately_unpaired(df)]
    n_tp = live.groupby("patient")["timepoint"].transform("nunique")
    return live[n_tp < 2]


def _patient_summary(df: pd.DataFrame, rows: pd.DataFrame, kind: str, ref, alt) -> dict:
    """The fit record's account of the patients (pairing.unpaired: drop): who entered, how
    the patient was modelled and why."""
    per_patient = rows.groupby("patient").size()
    out = {
        "samples_entered": int(len(rows)),
        "patients_paired": int((per_patient >= 2).sum()),
        "patients_unpaired": int((per_patient == 1).sum()),
    }
    if kind != "two_group":
        left = _unpaired_candidates(df, (ref, alt))
        if kind != "paired":
            left = left[left["response"].notna()]
        out["patient_model"] = FIXED_BLOCK
        out["patient_model_reason"] = (
            f"paired design on the patients with both a {ref} and a {alt} sample: the patient "
            "is a fixed block, so each patient is compared with themself"
            + (f"; {len(left)} sample(s) of patients with only one of them left out "
               "(pairing.unpaired: drop)" if len(left) else "; no patient has only one of them")
        )
        out["unpaired_samples_left_out"] = int(len(left))
    else:
        out["patient_model"] = UNPAIRED_MODEL
        out["patient_model_reason"] = (
            "one sample per patient (pre-treatment samples of two response groups): no "
            "within-patient correlation to model"
        )
        out["unpaired_samples_left_out"] = 0
    return out


def block_contrast(
    df: pd.DataFrame, name: str, dataset: str, *, covariates=None,
    min_per_group: int = MIN_PER_GROUP, min_pairs: int = MIN_PAIRS,
) -> ContrastSpec:
    """A paired contrast with ``pairing.unpaired: block``: every usable sample of its two
    timepoints (grouped contrasts: with a known response), the patient as a random effect
    (limma's duplicateCorrelation + lmFit(block=); prepost.de.mixed). Designs (no patient
    columns; shown for post vs pre, any two timepoints alike):

    - post_vs_pre: ``~ timepoint``, coefficient ``timepoint[post]``;
    - post_vs_pre_responder / _non_responder: ``~ response + post:non_responder +
      post:responder`` (limma User's Guide 9.7 with the patient as a random effect), the
      group's own coefficient;
    - interaction: ``~ response + timepoint + timepoint:response``, coefficient
      ``timepoint[post]:response[responder]``.

    Covariates are kept even when constant within patients (the patient is no longer a fixed
    block). Needs min_pairs complete pairs (the within-patient correlation is estimated from
    them) and, per response group, min_per_group patients. Samples QC took out of a pair
    whose patient has both stay out."""
    info = parse_contrast(name)
    kind, ref, alt = info["kind"], info["reference"], info["target"]
    rows = df[df["usable"] & df["timepoint"].isin([ref, alt]) & ~_deliberately_unpaired(df)].copy()
    if kind != "paired":
        _no_response(df, dataset, name)
        rows = rows[rows["response"].notna()]
    rows["_t"] = (rows["timepoint"] == alt).astype(int)
    rows = rows.reset_index(names="sample").sort_values(["patient", "_t", "sample"])
    rows = rows.drop(columns="_t").set_index("sample")
    per_patient = rows.groupby("patient")["timepoint"].nunique()
    paired = per_patient.index[per_patient == 2]
    _need(len(paired), f"complete {ref}/{alt} pairs (the within-patient correlation needs them)",
          dataset, name, min_pairs)
    post = (rows["timepoint"] == alt).to_numpy(float)
    tp = f"timepoint[{alt}]"
    design = pd.DataFrame({"Intercept": 1.0}, index=rows.index)
    resp = rows["response"]
    pairs = _pairs_table(rows[rows["patient"].isin(paired)], ref, alt)
    if kind == "paired":
        design[tp] = post
        tested = tp
        meaning = f"{alt} minus {ref} log2 expression, patient as a random effect"
    else:
        n_grp = {g: rows.loc[resp == g, "patient"].nunique() for g in RESPONSES}
        if kind == "interaction":
            for grp in RESPONSES:
                _need(n_grp[grp], f"patients who are {grp}s", dataset, name, min_per_group)
            design["response[responder]"] = (resp == "responder").to_numpy(float)
            design[tp] = post
            tested = f"{tp}:response[responder]"
            design[tested] = post * (resp == "responder").to_numpy(float)
            meaning = f"({alt} - {ref}) in responders minus ({alt} - {ref}) in non-responders"
        else:
            grp = info["group"]
            _need(n_grp[grp], f"patients who are {grp}s", dataset, name, min_per_group)
            if all(n_grp[g] > 0 for g in RESPONSES):
                design["response[responder]"] = (resp == "responder").to_numpy(float)
            for g in ("non_responder", "responder"):
                if n_grp[g] > 0:
                    design[f"{tp}:response[{g}]"] = post * (resp == g).to_numpy(float)
            tested = f"{tp}:response[{grp}]"
            meaning = f"{alt} minus {ref} log2 expression, {grp}s, patient as a random effect"
            of_group = set(rows.loc[resp == grp, "patient"])
            pairs = pairs.loc[[p for p in pairs.index if p in of_group]]
    dropped: dict = {}
    if covariates:
        extra, dropped = _covariate_columns(rows, covariates, df, dataset, paired=False)
        design = pd.concat([design, extra], axis=1)
    _check_rank(design, dataset, name)
    x = design.to_numpy(float)
    contrast = pd.Series(0.0, index=design.columns)
    contrast[tested] = 1.0
    n_unpaired = int((per_patient == 1).sum())
    summary = {
        "samples": int(len(rows)),
        "coefficients": int(x.shape[1]),
        "df_residual": int(x.shape[0] - np.linalg.matrix_rank(x)),
        "pairs": int(len(paired)),
        **_random_effect_summary(rows, len(paired), n_unpaired),
    }
    if covariates:
        summary["covariates"] = list(extra.columns)
        summary["covariates_dropped"] = dropped
    if kind != "paired":
        units = rows.drop_duplicates("patient")
        summary.update({f"n_{g}": int((units["response"] == g).sum()) for g in RESPONSES})
    return ContrastSpec(
        dataset=dataset, name=name, samples=rows[["patient", "timepoint", "response"]].copy(),
        design=design.astype(float), contrast=contrast, pairs=pairs, meaning=meaning,
        summary=summary, block=rows["patient"].astype(str), kind=kind, reference=ref, target=alt,
    )


def _random_effect_summary(rows: pd.DataFrame, n_paired: int, n_unpaired: int) -> dict:
    return {
        "samples_entered": int(len(rows)),
        "patients_paired": int(n_paired),
        "patients_unpaired": int(n_unpaired),
        "patient_model": RANDOM_EFFECT,
        "patient_model_reason": (
            "pairing.unpaired: block: every usable sample enters, patients with one sample "
            f"({n_unpaired}) as well as complete pairs ({n_paired}); the patient is a random "
            "effect whose within-patient correlation is estimated from all genes (limma "
            "duplicateCorrelation), so the pairs stay paired and the unpaired samples add "
            "information"
        ),
        "unpaired_samples_left_out": 0,
    }


def _matches(values: pd.Series, wanted) -> pd.Series:
    wanted = [str(w) for w in (wanted if isinstance(wanted, list) else [wanted])]
    return values.astype("string").str.strip().isin(wanted).fillna(False).astype(bool)


def defined_contrast(
    df: pd.DataFrame, spec: dict, dataset: str, *, covariates=None,
    min_per_group: int = MIN_PER_GROUP, min_pairs: int = MIN_PAIRS, unpaired: str = DROP,
) -> ContrastSpec:
    """A contrast declared as data: ``name``; ``samples``: {sample sheet field: value or list
    of values} (every condition must hold; e.g. {timepoint: pre, er_status: positive});
    ``compare: [field, reference, target]`` (tested: target minus reference); ``block``
    (optional, a field, normally patient): compare within its levels. With a block the test is
    paired: the levels that have both reference and target samples, the block a fixed effect
    (pairing.unpaired: drop) or every selected sample with the block a random effect (block).
    Without a block the samples are independent groups (``~ field``). The presets
    (preset_definition) build the same designs as post_vs_pre / responder_vs_non_responder_pre."""
    name = spec["name"]
    where = f"dataset {dataset!r}, contrast {name!r}"
    compare = spec.get("compare")
    if not isinstance(compare, (list, tuple)) or len(compare) != 3:
        raise ContrastError(f"{where}: compare must be [field, reference, target], got {compare!r}")
    fld, ref, alt = (str(v) for v in compare)
    if ref == alt:
        raise ContrastError(f"{where}: compare's reference and target are both {ref!r}")
    fields = [c for c in df.columns if c not in ("in_pair", "usable")]
    for key, col in [*[("samples", k) for k in (spec.get("samples") or {})], ("compare", fld),
                     *([("block", spec["block"])] if spec.get("block") else [])]:
        if col not in df.columns or col in ("in_pair", "usable"):
            raise ContrastError(
                f"{where}: {key} field {col!r} is not a sample sheet column; samples.tsv has {fields}"
            )
    keep = df["usable"] & ~_deliberately_unpaired(df)
    for col, wanted in (spec.get("samples") or {}).items():
        keep &= _matches(df[col], wanted)
    value = df[fld].astype("string").str.strip()
    keep &= value.isin([ref, alt]).fillna(False).astype(bool)
    rows = df[keep].copy()
    rows["_v"] = value[keep]
    for lev in (ref, alt):
        if not (rows["_v"] == lev).any():
            seen = sorted(set(value[df["usable"]].dropna()))
            raise ContrastError(
                f"{where}: no selected sample has {fld} = {lev!r} (values of {fld!r}: {seen[:10]})"
            )
    block = spec.get("block")
    target = (rows["_v"] == alt).to_numpy(float)
    col = f"{fld}[{alt}]"
    pairs = None
    blk_series = None
    if block:
        rows["_b"] = rows[block].astype("string")
        per = rows.groupby("_b")["_v"].nunique()
        both = per.index[per == 2]
        _need(len(both), f"{block} levels with both {fld} = {ref} and {alt}", dataset, name, min_pairs)
        dup = rows.groupby(["_b", "_v"]).size()
        if (dup > 1).any():
            (b, v), k = next((i, n) for i, n in dup.items() if n > 1)
            raise ContrastError(
                f"{where}: {block} {b!r} has {k} samples with {fld} = {v!r}; a paired comparison "
                "needs at most one per level (narrow samples)"
            )
        if unpaired == DROP:
            rows = rows[rows["_b"].isin(both)]
        rows["_t"] = (rows["_v"] == alt).astype(int)
        rows = rows.reset_index(names="sample").sort_values(["_b", "_t", "sample"]).set_index("sample")
        target = (rows["_v"] == alt).to_numpy(float)
        design = pd.DataFrame({"Intercept": 1.0}, index=rows.index)
        if unpaired == DROP:
            levels = sorted(rows["_b"].unique())
            for lev in levels[1:]:
                design[f"{block}[{lev}]"] = (rows["_b"] == lev).to_numpy(float)
        else:
            blk_series = rows["_b"].astype(str)
        design[col] = target
        wide = rows.reset_index().pivot(index="_b", columns="_v", values="sample").dropna()
        pairs = wide[[ref, alt]].set_axis(["pre", "post"], axis=1).sort_index()
        pairs.index.name = "patient"
        meaning = f"{fld} {alt} minus {ref}, within {block}"
    else:
        rows = rows.reset_index(names="sample").sort_values(["_v", "sample"]).set_index("sample")
        for lev in (ref, alt):
            _need(int((rows["_v"] == lev).sum()), f"samples with {fld} = {lev}", dataset, name, min_per_group)
        design = pd.DataFrame({"Intercept": 1.0, col: (rows["_v"] == alt).to_numpy(float)}, index=rows.index)
        meaning = f"{fld} {alt} minus {ref}, independent samples"
    dropped: dict = {}
    if covariates:
        extra, dropped = _covariate_columns(rows, covariates, df, dataset, bool(block) and unpaired == DROP)
        design = pd.concat([design, extra], axis=1)
    _check_rank(design, dataset, name)
    x = design.to_numpy(float)
    contrast = pd.Series(0.0, index=design.columns)
    contrast[col] = 1.0
    summary = {
        "samples": int(len(rows)),
        "coefficients": int(x.shape[1]),
        "df_residual": int(x.shape[0] - np.linalg.matrix_rank(x)),
        "declared": {k: v for k, v in spec.items() if k != "name"},
    }
    if covariates:
        summary["covariates"] = list(extra.columns)
        summary["covariates_dropped"] = dropped
    if block:
        per = rows.groupby("_b").size()
        n_pairs = int((per == 2).sum())
        summary["pairs"] = n_pairs
        if blk_series is not None:
            summary.update(_random_effect_summary(rows, n_pairs, int((per == 1).sum())))
        else:
            summary.update({
                "samples_entered": int(len(rows)), "patients_paired": n_pairs, "patients_unpaired": 0,
                "patient_model": FIXED_BLOCK,
                "patient_model_reason": (
                    f"declared with block {block!r}: paired on the {block} levels with both "
                    f"{fld} = {ref} and {alt}, {block} a fixed block (pairing.unpaired: drop)"
                ),
            })
    else:
        summary.update({
            "samples_entered": int(len(rows)),
            "patients_paired": 0,
            "patients_unpaired": int(rows["patient"].nunique()),
            "patient_model": UNPAIRED_MODEL,
            "patient_model_reason": (
                "declared without a block: the selected samples are compared as independent "
                "groups" + ("" if rows["patient"].is_unique else
                            "; some patients have several selected samples, whose correlation "
                            "is not modelled (declare block: patient to pair them)")
            ),
        })
    samples = rows[["patient", "timepoint", "response"]].copy()
    return ContrastSpec(
        dataset=dataset, name=name, samples=samples, design=design.astype(float),
        contrast=contrast, pairs=pairs, meaning=meaning, summary=summary, block=blk_series,
        kind="defined", reference=ref, target=alt,
    )
