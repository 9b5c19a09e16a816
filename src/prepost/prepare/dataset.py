"""From downloaded files to one analysis-ready dataset: expression, sample sheet, pair ledger.

The design is checked here, before any model runs, so a dataset that cannot be analysed fails
in seconds with the reason instead of after the DE step.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from prepost import files
from prepost.io import counts as count_tables, geo, rcc
from prepost.enrich.genesets import read_gmt
from prepost.io.gene_maps import GeneMapError, read_gene_maps
from prepost.prepare import expression, gene_ids, pairing
from prepost.qc.lanes import LaneQcError, screen_housekeeping
from prepost.prepare import samples as sample_tables
from prepost.provenance import software_versions
from prepost.prepare.prepared import read_prepared  # noqa: F401 (its home; re-exported)
from prepost.io.datasets import counts_sample_key, rcc_roles, series_matrix_roles, values_kind
from prepost.vocabulary import DEFAULT_CONTRASTS


class PrepareError(ValueError):
    """Input files that do not fit together (sample ids, count table columns)."""


@dataclass
class Prepared:
    expression: pd.DataFrame  # genes x samples; int64 counts or float log2 values
    values: str  # "counts" or "log2"
    sheet: pd.DataFrame
    ledger: pd.DataFrame
    summary: dict = field(default_factory=dict)


def _read_table(path: str, what: str, **kw) -> pd.DataFrame:
    """read_tsv with a parse failure (ragged rows, empty file) reported against the file."""
    try:
        return files.read_tsv(path, **kw)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise PrepareError(f"{path}: cannot read the {what} as a tab-separated table ({err})") from None


def _first_duplicate(ids: pd.Index, path: str, what: str) -> None:
    """Duplicated ids would be silently merged or mis-paired later: stop, naming file and line."""
    hit = geo.first_duplicate(ids)
    if hit is not None:
        j, first = hit
        raise PrepareError(
            f"{path}, line {j + 2}: duplicate {what} {ids[j]!r} (first on line {first + 2}); "
            f"each {what} must appear once"
        )


def _count_options(ds: dict) -> dict:
    """read_counts keyword arguments from the dataset's ``counts`` block."""
    c = ds.get("counts", {})
    return {
        "gene_column": c.get("gene_column"),
        "annotation_columns": c.get("annotation_columns"),
        "round_values": bool(c.get("round", False)),
        "duplicates": c.get("duplicates", "error"),
    }


def _read_counts(path: str, ds: dict) -> count_tables.CountTable:
    table = count_tables.read_counts(path, **_count_options(ds))
    col = ds.get("counts", {}).get("symbol_column")
    if col is not None and col not in table.annotation.columns:
        raise PrepareError(
            f"{path}: counts.symbol_column {col!r} is not an annotation column of the table "
            f"(annotation columns: {list(table.annotation.columns)}); list it in counts.annotation_columns"
        )
    return table


def _guard(fn, name: str):
    """Run a step whose errors are the user's input: re-raised as PrepareError naming the dataset."""
    try:
        return fn()
    except (sample_tables.SampleSheetError, gene_ids.GeneIdError, GeneMapError) as err:
        raise PrepareError(f"dataset {name!r}: {err}") from None


def _sheet(path: str, id_column: str) -> pd.DataFrame:
    try:
        return sample_tables.read_sample_sheet(path, id_column)
    except sample_tables.SampleSheetError as err:
        raise PrepareError(str(err)) from None


def _gene_symbols(name: str, ds: dict, data: pd.DataFrame, values: str, table, files: dict) -> tuple[pd.DataFrame, dict]:
    """Map the table's gene ids to symbols (prepare.gene_ids), or stop with the fix."""
    declared = ds.get("gene_ids", "auto")
    detected, evidence = gene_ids.detect_id_type(data.index)
    kind = detected if declared == "auto" else declared
    where = f"dataset {name!r}, {files.get('counts', files.get('expression'))}"
    col = ds.get("counts", {}).get("symbol_column")
    # GEO's annotation of its NCBI-generated counts first, then the configured maps
    maps = [files[k] for k in ("gene_annotation",) if k in files]
    maps += [files[k] for k in sorted((k for k in files if k.startswith("gene_map_")), key=lambda k: int(k[9:]))]
    base = {"declared": declared, "detected": detected, "evidence": evidence}
    if col is not None:  # the table's own symbol column; rows are in the table's order
        symbols = pd.Series(table.annotation[col].to_numpy())
        out, ledger = _guard(lambda: gene_ids.map_to_symbols(
            data, kind, values, symbols=symbols, merge=ds.get("gene_merge")), name)
        return out, {**base, **ledger, "symbol_column": col}
    if kind == "symbol":
        return data, {**base, "id_type": "symbol", "mapped": 0, "ids": int(len(data))}
    if not maps:
        raise PrepareError(gene_ids.needs_map_message(kind, evidence, len(data), where))
    relation = _guard(lambda: read_gene_maps(maps), name)
    out, ledger = _guard(lambda: gene_ids.map_to_symbols(
        data, kind, values, relation=relation, merge=ds.get("gene_merge")), name)
    return out, {**base, **ledger, "maps": maps}


# At prepare time, a table whose genes match (almost) none of the gene sets' genes has ids of
# another type or species: stop before DE instead of failing in enrichment. A targeted panel
# still matches far more than this (the enrichment step judges coverage per collection).
MIN_SET_GENES_FOUND = 10


def _check_gene_sets(name: str, genes: pd.Index, gmts: list[str], id_ledger: dict | None) -> dict:
    found: dict = {}
    upper = set(genes.astype(str).str.upper())
    for path in gmts:
        set_genes = set(read_gmt(path)["gene"].astype(str).str.upper())
        hit = len(set_genes & upper)
        found[Path(path).stem] = {"set_genes": len(set_genes), "found": hit}
        if hit < min(MIN_SET_GENES_FOUND, len(set_genes)):
            detected = (id_ledger or {}).get("detected", "symbol")
            raise PrepareError(
                f"dataset {name!r}: only {hit} of the {len(set_genes)} genes of the gene-set "
                f"collection {path} are among the data's {len(genes)} gene ids (e.g. "
                f"{list(genes[:5])}); the ids look like {detected}s. Gene sets use symbols: set "
                "gene_ids and gene_map so the ids are mapped to symbols (see README: gene identifiers)"
            )
    return found


def _read_local_expression(path: str) -> pd.DataFrame:
    df = _read_table(path, "expression table", index_col=0)
    bad = [c for c in df.columns if not pd.api.types.is_numeric_dtype(df[c])]
    if bad:
        raise PrepareError(f"{path}: non-numeric values in column(s) {bad[:5]}")
    df.index = df.index.astype(str)
    df.index.name = "gene"
    _first_duplicate(df.index, path, "gene id")
    df = df.astype(float)
    inf = np.isinf(df.to_numpy())
    if inf.any():
        i, j = np.argwhere(inf)[0]
        raise PrepareError(
            f"{path}, line {i + 2}, column {df.columns[j]}: infinite value for gene "
            f"{df.index[i]!r}; expected finite numbers (NA for missing)"
        )
    return df


def _check_platform(sm: geo.SeriesMatrix, configured: str, path: str) -> None:
    """The annotation must be the series' own platform: another platform whose probe IDs
    overlap (GPL96 and GPL570 share most) passes the ID-overlap check of collapse_probes, so
    differences in its annotation would go unnoticed."""
    declared = list(dict.fromkeys(sm.series.get("platform_id", [])))
    if "platform_id" in sm.samples.columns:
        declared += [p for p in sm.samples["platform_id"].dropna().unique() if p not in declared]
    if declared and configured not in declared:
        raise PrepareError(
            f"{path}: the series matrix is from platform(s) {declared}, but the config's "
            f"platform.accession is {configured!r}; set platform.accession to the series' platform "
            "(or series_matrix_file to that platform's matrix when the series has several)"
        )


def load_series(ds: dict, files: dict[str, str]) -> geo.SeriesMatrix:
    """The dataset's series metadata, sample sheet and table: from the family SOFT (only the
    configured platform's samples), or from one or several series matrices (GEO's per-platform
    files of one series, combined; a geo_series_matrix dataset must be one platform)."""
    if "family_soft" in files:
        plat = ds["platform"]["accession"] if ds["kind"] == "geo_series_matrix" else None
        return geo.parse_family_soft(files["family_soft"], plat)
    roles = [r for r in series_matrix_roles(len(files)) if r in files]
    parts = [(files[r], geo.parse_series_matrix(files[r])) for r in roles]
    if ds["kind"] == "geo_series_matrix" and len(parts) > 1:
        per_file = {path: geo.series_platforms(sm) for path, sm in parts}
        distinct = sorted({p for plats in per_file.values() for p in plats})
        if len(distinct) > 1:
            listing = "; ".join(f"{path}: {plats}" for path, plats in per_file.items())
            raise PrepareError(
                f"series_matrix_file lists files of different platforms ({listing}). Probe ids "
                "and annotations differ between platforms: configure one geo_series_matrix "
                "dataset per platform (each with its series_matrix_file and platform.accession)"
            )
    return geo.combine_series_matrices(parts, table=ds["kind"] == "geo_series_matrix")


def load_platform(ds: dict, files: dict[str, str]) -> pd.DataFrame:
    """Probe -> symbol table: the GPL .annot / SOFT file, or (``platform.file: family``) the
    ^PLATFORM section of the series' own family SOFT."""
    plat = ds["platform"]
    if plat.get("file") == "family":
        if "family_soft" not in files:
            raise PrepareError(
                "platform.file: family reads the platform from the series' family SOFT; set "
                "family_soft: true on the dataset (or platform.file: annot / soft)"
            )
        return geo.parse_platform(files["family_soft"], plat.get("symbol_column"), plat["accession"])
    return geo.parse_platform(files["platform"], plat.get("symbol_column"))


def decide_log2(ds: dict, kind: str, data: pd.DataFrame) -> tuple[bool, dict]:
    """Whether ``data`` is already log2, and the summary's record of the decision.

    A geo_series_matrix dataset's ``values`` (log2 | intensity) overrides GEO2R's automatic
    rule; a local dataset's ``values: log2`` is taken as given; otherwise needs_log2 decides.
    """
    forced = ds["kind"] == "geo_series_matrix" and ds.get("values") in ("log2", "intensity")
    if forced:
        logged = ds["values"] == "log2"
    else:
        logged = kind == "log2" or not expression.needs_log2(data)
    record = {
        "values_input": "log2" if logged else "intensity",
        "values_automatic": not forced and kind != "log2",
    }
    return logged, record


# -- targeted panels (NanoString RCC files) ------------------------------------------------

@dataclass
class Panel:
    counts: pd.DataFrame  # every probe x every lane read
    probes: pd.DataFrame  # CodeClass, Accession by probe
    record: dict  # prepare.json's "rcc"


# The probes analysed as genes; Negative/Positive ERCC controls are used by the lane QC only.
PANEL_GENE_CLASSES = (rcc.ENDOGENOUS, rcc.HOUSEKEEPING)


def _read_panel(name: str, ds: dict, files: dict) -> tuple[Panel, pd.DataFrame, pd.DataFrame]:
    """RCC files -> (panel, sample sheet from the file names, counts of the gene probes)."""
    spec = ds.get("rcc", {})
    paths = [files[k] for k in rcc_roles(files)]
    try:
        rset = rcc.combine(rcc.read_rcc_files(paths))
        lanes = list(rset.counts.columns)
        if spec.get("sample_regex"):
            samples = rcc.samples_from_names(lanes, spec["sample_regex"], f"dataset {name!r}: rcc.sample_regex")
        else:
            samples = pd.DataFrame(index=pd.Index(lanes, name="sample"))
    except rcc.RccError as err:
        raise PrepareError(f"dataset {name!r}: {err}") from None
    samples.insert(0, "rcc_file", [rset.sources[s] for s in samples.index])
    genes = rset.probes.index[rset.probes["CodeClass"].isin(PANEL_GENE_CLASSES)]
    data = rset.counts.loc[genes].astype(np.int64)
    data.index.name = "gene"
    record = {
        "files": len(lanes),
        "panel": sorted(set(rset.lanes.get("Sample.GeneRLF", pd.Series(dtype=str)).dropna())),
        "file_versions": sorted(set(rset.lanes.get("Header.FileVersion", pd.Series(dtype=str)).dropna())),
        "code_classes": rset.probes["CodeClass"].value_counts().sort_index().to_dict(),
        "genes_analysed": {c: int((rset.probes.loc[genes, "CodeClass"] == c).sum()) for c in PANEL_GENE_CLASSES},
        "sample_regex": spec.get("sample_regex"),
    }
    return Panel(rset.counts, rset.probes, record), samples, data


GSM_IN_NAME = re.compile(r"^(GSM\d+)(?![0-9])")


def _join_geo_samples(name: str, panel: Panel, samples: pd.DataFrame, data: pd.DataFrame,
                      geo_samples: pd.DataFrame) -> tuple[Panel, pd.DataFrame, pd.DataFrame]:
    """RCC files named as GEO serves them (GSMnnn_<name>.RCC in GSEnnn_RAW.tar) joined to the
    series' sample sheet by that GSM: the samples become the GSM ids with GEO's fields; the
    file-name fields (rcc.sample_regex) are kept beside them (a clash gets " (file name)").
    A file without a GSM prefix, two files of one GSM or a GSM not in the series stop prepare."""
    gsm = {}
    for s in data.columns:
        m = GSM_IN_NAME.match(s)
        if m is None:
            raise PrepareError(
                f"dataset {name!r}: RCC file {samples.loc[s, 'rcc_file']} does not start with a GSM "
                "accession (GEO's GSMnnn_<name>.RCC); with an accession the files are matched to "
                "the series' samples by it"
            )
        if m.group(1) in gsm.values():
            other = next(k for k, v in gsm.items() if v == m.group(1))
            raise PrepareError(f"dataset {name!r}: RCC files {other!r} and {s!r} are both {m.group(1)}")
        gsm[s] = m.group(1)
    absent = sorted(set(gsm.values()) - set(geo_samples.index.astype(str)))
    if absent:
        raise PrepareError(f"dataset {name!r}: RCC files of {absent[:5]} whose GSM is not a sample of the series")
    own = samples.rename(index=gsm)
    own = own.rename(columns={c: f"{c} (file name)" for c in own.columns if c in geo_samples.columns})
    geo_part = geo_samples.copy()
    geo_part.index = geo_part.index.astype(str)
    joined = geo_part.loc[list(own.index)].join(own)
    joined.index.name = "sample"
    panel = Panel(panel.counts.rename(columns=gsm), panel.probes,
                  {**panel.record, "geo_samples_without_rcc": sorted(set(geo_part.index) - set(own.index))})
    return panel, joined, data.rename(columns=gsm)


def _panel_normalisation(name: str, ds: dict, panel: Panel, keep: list[str]) -> dict:
    """How a panel is normalised and which genes are tested (prepare.json keys size_factors,
    not_tested): size factors from the housekeeping genes that pass the a-priori screen
    (prepost.qc.lanes.screen_housekeeping on the analysed samples), the default; or DESeq2's
    median of ratios over all genes. Housekeeping genes are not tested unless
    ``rcc.test_housekeeping``."""
    spec = ds.get("rcc", {})
    hk = sorted(panel.probes.index[panel.probes["CodeClass"] == rcc.HOUSEKEEPING])
    out: dict = {}
    if spec.get("size_factors", "housekeeping") == "housekeeping":
        try:
            retained, screened = screen_housekeeping(panel.counts[keep], panel.probes)
        except LaneQcError as err:
            raise PrepareError(f"dataset {name!r}: {err}") from None
        out["size_factors"] = {
            "method": "housekeeping",
            "control_genes": sorted(retained),
            "housekeeping_screened_out": dict(sorted(screened.items())),
            "samples_screened_on": len(keep),
        }
    else:
        out["size_factors"] = {"method": "median_of_ratios"}
    if not spec.get("test_housekeeping", False):
        out["not_tested"] = hk
    return out


def prepare_dataset(name: str, ds: dict, files: dict[str, str]) -> Prepared:
    """Parse, map to genes, log-transform when needed, pair and validate one dataset."""
    summary: dict = {"dataset": name, "kind": ds["kind"]}
    kind = values_kind(ds)
    table = None
    panel = None
    if ds["kind"] == "nanostring":
        panel, samples, data = _read_panel(name, ds, files)
        if any(k.startswith("series_matrix") or k == "family_soft" for k in files):
            sm = load_series(ds, files)  # GEO's sample sheet: characteristics by GSM
            summary["accession"] = sm.accession
            panel, samples, data = _join_geo_samples(name, panel, samples, data, sm.samples)
        summary["rcc"] = panel.record
    elif ds["kind"] == "local":
        samples = _sheet(files["samples"], ds.get("sample_column", "sample"))
        if kind == "counts":
            table = _read_counts(files["expression"], ds)
        else:
            data = _read_local_expression(files["expression"])
    else:
        sm = load_series(ds, files)
        samples = sm.samples
        summary["accession"] = sm.accession
        if sm.other_platform_samples:
            summary["other_platform_samples"] = list(sm.other_platform_samples)
        if ds["kind"] == "geo_counts":
            table = _read_counts(files["counts"], ds)
        else:
            _check_platform(sm, ds["platform"]["accession"], files.get("series_matrix") or files["family_soft"])
            platform = load_platform(ds, files)
            data = sm.table
            summary["probes"] = int(len(data))
    if "sample_sheet" in files:
        spec = ds["sample_sheet"]
        sheet = _sheet(files["sample_sheet"], spec.get("id_column", "sample"))
        samples, summary["sample_sheet"] = _guard(
            lambda: sample_tables.join_sample_sheet(
                samples, sheet, spec.get("join", "geo_accession"), files["sample_sheet"], spec.get("regex")
            ), name
        )
    if table is not None:
        path = files.get("counts", files.get("expression"))
        summary["count_table"] = table.layout
        default_key = "sample" if ds["kind"] == "local" else counts_sample_key(ds)
        data, summary["columns"] = _guard(
            lambda: sample_tables.match_columns(table.counts, samples, ds.get("counts", {}), path, default_key),
            name,
        )
    if ds["kind"] != "geo_series_matrix":
        data, summary["gene_ids"] = _gene_symbols(name, ds, data, kind, table, files)
    if kind != "counts":
        try:
            logged, decision = decide_log2(ds, kind, data)
            summary.update(decision)
            if not logged:
                data = expression.log2_transform(data)
            summary["log2_transformed"] = not logged
            if ds["kind"] == "geo_series_matrix":
                data, dropped = expression.collapse_probes(data, platform)
                summary["probe_collapse"] = dropped
        except expression.ExpressionError as err:
            sources = " with ".join(files[r] for r in ("series_matrix", "family_soft", "platform", "expression") if r in files)
            raise PrepareError(f"dataset {name!r}, {sources}: {err}") from None
        kind = "log2"
    summary["genes"] = int(len(data))
    gmts = [files[k] for k in sorted(files) if k.startswith("gmt")]
    if gmts:
        summary["gene_set_overlap"] = _check_gene_sets(name, data.index, gmts, summary.get("gene_ids"))

    no_data = [s for s in samples.index if s not in data.columns]
    if kind == "log2":
        empty = data.columns[data.isna().all()]
        no_data += list(empty)
    unavailable = {s: "no expression values for this sample" for s in no_data}
    extra = [c for c in data.columns if c not in samples.index]
    if extra:
        raise PrepareError(
            f"dataset {name!r}: expression column(s) {extra[:5]} are not in the sample sheet"
        )
    sheet, ledger = pairing.pair_samples(samples, ds["pairing"], name, unavailable)
    summary["samples"] = int(len(sheet))
    summary["dropped"] = ledger.loc[ledger.status == "dropped", "reason"].value_counts().to_dict()
    try:
        summary.update(pairing.validate_design(
            sheet, ds.get("contrasts", list(DEFAULT_CONTRASTS)), name,
            unpaired=ds["pairing"].get("unpaired", "drop"),
        ))
    except pairing.PairingError as err:
        tally = "; ".join(f"{k}: {v}" for k, v in summary["dropped"].items()) or "none"
        raise pairing.PairingError(f"{err}. Dropped samples: {tally}") from None
    keep = [s for s in sheet["sample"] if s in data.columns and s not in no_data]
    if panel is not None:
        usable = [s for s in sheet.loc[sheet["usable"].astype(bool), "sample"] if s in keep]
        summary.update(_panel_normalisation(name, ds, panel, usable))
    data = data[keep].sort_index()
    data.index.name = "gene"
    return Prepared(expression=data, values=kind, sheet=sheet, ledger=ledger, summary=summary)


def write_prepared(p: Prepared, expression_path, samples_path, pairs_path, summary_path) -> None:
    files.write_parquet(p.expression, expression_path)
    files.write_tsv(p.sheet, samples_path)
    files.write_tsv(p.ledger, pairs_path)
    p.summary["values"] = p.values
    p.summary["software"] = software_versions("numpy", "pandas", "pyarrow")
    files.write_text(json.dumps(p.summary, indent=2, sort_keys=True, default=str) + "\n", summary_path)
