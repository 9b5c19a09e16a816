"""Pair samples by patient from configured rules, and check the design before any model runs.

Pairing is configuration, not code: each dataset says which sample field holds the patient id,
which the timepoint (with a value -> pre/post map) and, optionally, the response. Every sample
ends in the ledger as kept in a complete pair or dropped with the reason, so nothing is left
out silently.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from prepost.de.contrasts import ContrastError, parse_contrast, split_contrasts, validate_contrasts
from prepost.vocabulary import MIN_PAIRS, RESPONSES, UNKNOWN


class PairingError(ValueError):
    """A pairing rule that cannot be applied, or a design that cannot be fitted."""


SAMPLE_COLUMNS = ["sample", "title", "patient", "timepoint", "response", "in_pair", "usable"]
LEDGER_COLUMNS = ["sample", "title", "patient", "timepoint", "response", "status", "reason"]


def _field_values(samples: pd.DataFrame, rule: dict, key: str, dataset: str) -> pd.Series:
    """Values of one pairing rule: the field, then the regex's first group (or whole match)."""
    field = rule["field"]
    if field in samples.columns:
        values = samples[field]
    elif field in ("sample", "geo_accession"):
        values = pd.Series(samples.index, index=samples.index)
    else:
        have = ", ".join(repr(c) for c in samples.columns)
        raise PairingError(
            f"dataset {dataset!r}: pairing.{key}.field {field!r} is not a sample field; "
            f"fields found: {have}"
        )
    values = values.astype("string").str.strip()
    regex = rule.get("regex")
    if regex:
        try:
            pattern = re.compile(regex)
        except re.error as err:
            raise PairingError(
                f"dataset {dataset!r}: pairing.{key}.regex {regex!r} is not a valid regular "
                f"expression ({err})"
            ) from None
        group = 1 if pattern.groups else 0
        extracted = values.str.extract(f"({regex})" if group == 0 else regex, expand=True)
        values = extracted.iloc[:, 0].astype("string")
        if values.isna().all():
            examples = ", ".join(repr(v) for v in samples[field].astype(str).head(3))
            raise PairingError(
                f"dataset {dataset!r}: pairing.{key}.regex {regex!r} matches no value of "
                f"field {field!r} (e.g. {examples})"
            )
    values = values.mask(values == "")
    return values


def _mapped(values: pd.Series, rule: dict, key: str, dataset: str) -> pd.Series:
    mapping = rule.get("map")
    if not mapping:
        return values
    odd = [k for k in mapping if not isinstance(k, str)]
    if odd:  # YAML's On/Yes/True -> bool, 0/1 -> int: never equal to the text in the data
        raise PairingError(
            f"dataset {dataset!r}: pairing.{key}.map key {odd[0]!r} is not text (an unquoted "
            "On/Off/Yes/No/True/False or number in YAML); quote it as written in the data, e.g. 'On': post"
        )
    observed = set(values.dropna().unique())
    unmapped = sorted(observed - set(mapping))
    if unmapped:
        raise PairingError(
            f"dataset {dataset!r}: pairing.{key}.map has no entry for value(s) "
            f"{', '.join(repr(v) for v in unmapped)} of field {rule['field']!r}; map each to "
            f"one of {_allowed(key)} (the map's keys are {sorted(mapping)})"
        )
    unused = sorted(set(mapping) - observed)
    if len(unused) == len(mapping):
        raise PairingError(
            f"dataset {dataset!r}: no value of field {rule['field']!r} matches a key of "
            f"pairing.{key}.map ({sorted(mapping)})"
        )
    return values.map(mapping).astype("string")


def timepoint_order(rule: dict) -> list[str]:
    """The ordered timepoints of a dataset: ``pairing.timepoint.order`` or pre, post."""
    return list(rule.get("order") or ["pre", "post"])


def check_timepoint_order(rule: dict, dataset: str) -> None:
    """Every value the timepoint map gives (but exclude) is a declared timepoint, and the
    declared order holds pre and post (the pair every dataset has)."""
    order = timepoint_order(rule)
    if not isinstance(order, list) or not all(isinstance(t, str) for t in order):
        raise PairingError(f"dataset {dataset!r}: pairing.timepoint.order must be a list of timepoint names")
    if len(set(order)) != len(order) or not {"pre", "post"} <= set(order) or "exclude" in order:
        raise PairingError(
            f"dataset {dataset!r}: pairing.timepoint.order {order} must list distinct timepoints "
            "including pre and post, in time order (e.g. [pre, on, post]); exclude is not one"
        )
    bad = sorted({v for v in (rule.get("map") or {}).values() if v != "exclude" and v not in order})
    if bad:
        raise PairingError(
            f"dataset {dataset!r}: pairing.timepoint.map gives {bad}, which pairing.timepoint.order "
            f"{order} does not declare; add them to the order (in time order) or map to exclude"
        )


def check_dataset_config(name: str, ds: dict) -> None:
    """What the schema cannot check in a dataset's config, checked before any job runs:
    the timepoint map against pairing.timepoint.order, the contrast names (a timepoint
    contrast's timepoints must be declared; a declared contrast must not reuse a preset's name
    or be listed twice)."""
    pairing = ds.get("pairing")
    if not pairing:
        return
    check_timepoint_order(pairing["timepoint"], name)
    order = timepoint_order(pairing["timepoint"])
    try:
        names, declared = split_contrasts(ds.get("contrasts", ["post_vs_pre"]))
    except ContrastError as err:
        raise PairingError(f"dataset {name!r}: contrasts: {err}") from None
    for c in names:
        info = None if c in declared else parse_contrast(c)
        if info is None:
            continue
        missing = [t for t in (info["reference"], info["target"]) if t and t not in order]
        if missing:
            raise PairingError(
                f"dataset {name!r}: contrasts: {c!r} names timepoint(s) {missing} that "
                f"pairing.timepoint.order {order} does not declare"
            )


def _allowed(key: str) -> str:
    return {"timepoint": "pre, post, a timepoint of pairing.timepoint.order, or exclude", "response": "responder, non_responder, unknown"}.get(
        key, "a value"
    )


def pair_samples(
    samples: pd.DataFrame,
    pairing: dict,
    dataset: str,
    unavailable: dict[str, str] | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Apply the pairing rules; return (sample sheet, ledger).

    ``samples`` is indexed by sample id with the GEO fields and characteristics as columns.
    The sample sheet keeps every sample with ``patient``, ``timepoint``, ``response`` and
    ``in_pair``; the ledger says for every sample whether it is kept and, if not, why.
    ``unavailable`` maps sample ids that have no usable expression data to the reason.
    """
    if samples.index.has_duplicates:
        dups = sorted(samples.index[samples.index.duplicated()].unique())
        raise PairingError(f"dataset {dataset!r}: duplicated sample ids {dups}")
    n = len(samples)
    sheet = pd.DataFrame(index=samples.index.astype(str))
    sheet.index.name = "sample"
    sheet["title"] = samples["title"].astype("string") if "title" in samples else pd.NA
    sheet["patient"] = _field_values(samples, pairing["patient"], "patient", dataset)
    tp_raw = _field_values(samples, pairing["timepoint"], "timepoint", dataset)
    sheet["timepoint"] = _mapped(tp_raw, pairing["timepoint"], "timepoint", dataset)
    check_timepoint_order(pairing["timepoint"], dataset)
    for key in ("patient", "response"):
        if (pairing.get(key) or {}).get("order") is not None:
            raise PairingError(
                f"dataset {dataset!r}: pairing.{key}.order is not a setting; only "
                "pairing.timepoint has an order (the timepoints in time order)"
            )
    if pairing.get("response"):
        resp_raw = _field_values(samples, pairing["response"], "response", dataset)
        sheet["response"] = _mapped(resp_raw, pairing["response"], "response", dataset)
        sheet["response"] = sheet["response"].mask(sheet["response"] == "unknown")
    else:
        sheet["response"] = pd.Series(pd.NA, index=sheet.index, dtype="string")

    reason = pd.Series("", index=sheet.index, dtype=object)

    exclude = [str(s) for s in pairing.get("exclude", [])]
    unknown = sorted(set(exclude) - set(sheet.index))
    if unknown:
        raise PairingError(
            f"dataset {dataset!r}: pairing.exclude names sample(s) not in the series: {unknown}"
        )
    reason[sheet.index.isin(exclude)] = "excluded in config (pairing.exclude)"
    for sample, why in (unavailable or {}).items():
        if sample in reason.index and reason[sample] == "":
            reason[sample] = why
    free = reason == ""
    reason[free & (sheet["timepoint"] == "exclude")] = (
        "timepoint value mapped to exclude: " + tp_raw.astype(str)
    )[free & (sheet["timepoint"] == "exclude")]
    free = reason == ""
    reason[free & sheet["patient"].isna()] = f"no patient id (pairing.patient: field {pairing['patient']['field']!r})"
    free = reason == ""
    reason[free & sheet["timepoint"].isna()] = "no timepoint value"
    if (reason == "").sum() == 0:
        raise PairingError(f"dataset {dataset!r}: the pairing rules leave no sample of {n}")

    live = sheet[reason == ""]
    counts = live.groupby(["patient", "timepoint"]).size()
    multi = counts[counts > 1]
    if len(multi):
        details = "; ".join(
            f"patient {p} has {k} {t} samples ({', '.join(live.index[(live.patient == p) & (live.timepoint == t)])})"
            for (p, t), k in multi.items()
        )
        raise PairingError(
            f"dataset {dataset!r}: {details}. Keep one per timepoint: list the others under "
            "pairing.exclude (e.g. technical replicates or a second post-treatment biopsy)"
        )
    resp_per_patient = live.dropna(subset=["response"]).groupby("patient")["response"].nunique()
    conflicting = sorted(resp_per_patient.index[resp_per_patient > 1])
    if conflicting:
        raise PairingError(
            f"dataset {dataset!r}: patient(s) {conflicting} have different response values on "
            "their pre and post samples; check the response field and map"
        )
    timepoints_of = live.groupby("patient")["timepoint"].agg(lambda s: set(s))
    complete = {p for p, tps in timepoints_of.items() if {"pre", "post"} <= tps}
    primary = sheet["timepoint"].isin(["pre", "post"])
    incomplete = (reason == "") & ~sheet["patient"].isin(complete) & primary
    other = {"pre": "post", "post": "pre"}
    reason[incomplete] = [
        f"unpaired: patient {p} has no {other[t]} sample" for p, t in
        zip(sheet.loc[incomplete, "patient"], sheet.loc[incomplete, "timepoint"])
    ]
    # samples at further ordered timepoints (e.g. on-treatment) are not part of the pre/post
    # pair: kept for the contrasts that name their timepoint
    extra = (reason == "") & ~primary
    reason[extra] = "timepoint " + sheet.loc[extra, "timepoint"].astype(str) + (
        ": not in the pre/post pair; enters the contrasts that name this timepoint"
    )
    # A patient's response is known if any of their samples states it.
    known = live.dropna(subset=["response"]).groupby("patient")["response"].first()
    sheet["response"] = sheet["response"].fillna(sheet["patient"].map(known).astype("string"))

    sheet["in_pair"] = reason == ""
    # Unpaired samples still serve unpaired contrasts (responders vs non-responders, pre) and,
    # with pairing.unpaired: block, the paired ones; further timepoints their own contrasts.
    sheet["usable"] = sheet["in_pair"] | reason.str.startswith("unpaired") | extra
    ledger = sheet[["title", "patient", "timepoint", "response"]].copy()
    ledger["status"] = np.where(sheet["in_pair"] | extra, "kept", "dropped")
    ledger["reason"] = reason.where(~sheet["in_pair"], "complete pair")
    sheet = sheet.join(samples.drop(columns=[c for c in samples.columns if c in sheet.columns or c == "title"]))
    sheet = sheet.reset_index()
    ledger = ledger.reset_index()[LEDGER_COLUMNS]
    order = ["sample", "title", "patient", "timepoint", "response", "in_pair", "usable"]
    sheet = sheet[order + [c for c in sheet.columns if c not in order]]
    return sheet, ledger


def paired_samples(sheet: pd.DataFrame) -> pd.DataFrame:
    """The samples in complete pairs, indexed by sample id, ordered by patient then timepoint."""
    kept = sheet[sheet["in_pair"].astype(bool)].copy()
    kept["_t"] = (kept["timepoint"] == "post").astype(int)
    kept = kept.sort_values(["patient", "_t", "sample"]).drop(columns="_t")
    return kept.set_index("sample")


def validate_design(sheet: pd.DataFrame, contrasts: list[str], dataset: str, unpaired: str = "drop") -> dict:
    """Fail fast, naming the dataset and the fix, when a contrast cannot be estimated."""
    kept = paired_samples(sheet)
    n_pairs = kept["patient"].nunique()
    if n_pairs < MIN_PAIRS:
        raise PairingError(
            f"dataset {dataset!r}: {n_pairs} complete pre/post pair(s) after pairing; at least "
            f"{MIN_PAIRS} are needed; check pairing.patient / pairing.timepoint in the config"
        )
    summary = {"dataset": dataset, "pairs": int(n_pairs), "samples": int(len(sheet))}
    try:
        summary["contrasts"] = validate_contrasts(sheet, contrasts, dataset, unpaired=unpaired)
    except ContrastError as err:
        raise PairingError(f"{err}; fix the data or remove the contrast from the config") from None
    return summary


def complete_pairs(expr: pd.DataFrame, sheet: pd.DataFrame, what: str) -> pd.DataFrame:
    """One row per patient with both a pre and a post sample present in ``expr``:
    columns pre, post (sample ids) and response. ``in_pair`` (bool or "True"/"False") is honoured."""
    s = sheet.copy()
    if "sample" in s.columns:
        s = s.set_index("sample")
    need = [c for c in ("patient", "timepoint") if c not in s.columns]
    if need:
        raise ValueError(f"{what}: sample sheet lacks column(s) {', '.join(need)}; expected "
                         "sample, patient, timepoint, response, in_pair")
    s.index = s.index.astype(str)
    if "in_pair" in s.columns:
        s = s[s["in_pair"].astype(str).str.lower().isin(["true", "1"])]
    s = s[s["timepoint"].isin(["pre", "post"]) & s.index.isin(expr.columns.astype(str))]
    dup = s.duplicated(["patient", "timepoint"], keep=False)
    if dup.any():
        bad = s[dup].sort_values(["patient", "timepoint"])
        raise ValueError(
            f"{what}: patient(s) {', '.join(sorted(bad['patient'].astype(str).unique()))} have "
            "more than one pre or post sample; expected one of each (see pairs.tsv)"
        )
    wide = s.reset_index().pivot(index="patient", columns="timepoint", values=s.index.name or "index")
    wide = wide.reindex(columns=["pre", "post"]).dropna()
    resp = s["response"] if "response" in s.columns else pd.Series(pd.NA, index=s.index)
    per_patient = (
        pd.DataFrame({"patient": s["patient"], "response": resp})
        .dropna().groupby("patient")["response"].first()
    )
    wide["response"] = (
        wide.index.to_series().map(per_patient).fillna("unknown").astype(str)
        .where(lambda r: r.isin([*RESPONSES, UNKNOWN]), UNKNOWN)
    )
    return wide.sort_index()
