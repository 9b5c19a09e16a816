"""Bad inputs and faults (issue 7): a clear error naming the file and the problem, or a
documented recovery, and never a half-written output.

``MATRIX`` is the index of every case: id, what goes wrong, what must happen, the test that
checks it, and the outcome on this branch ("pass": already right; "fixed": wrong before this
branch, fixed with the test). Cases already covered by another test file point at that test;
``test_matrix_points_at_real_tests`` checks that every referenced test exists, so the index
cannot silently rot. Reproducibility of clean runs is ``tests/test_workflow.py::
test_second_run_is_byte_identical``.
"""

from __future__ import annotations

import ast
import copy
import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import copy_run, run_workflow, workflow_cmd
from prepost import files as io
from prepost.enrich import run as enrich_run
from prepost.io import counts, download, geo
from prepost.io.download import DownloadError
from prepost.enrich.genesets import OverlapError
from prepost.prepare.pairing import PairingError, pair_samples
from prepost.prepare.dataset import PrepareError, prepare_dataset

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = str(ROOT / "workflow/schemas/config.schema.yaml")


class Case(NamedTuple):
    id: str
    input: str
    expected: str
    test: str  # tests/<file>.py::<function>[param]
    outcome: str  # pass | fixed


F = "tests/test_faults.py::"
MATRIX = [
    # --- config and sample sheets
    Case("C01", "unknown config key (download.ofline)", "schema error naming 'ofline'", "tests/test_config.py::test_bad_config_names_the_key", "pass"),
    Case("C02", "wrong type (download.timeout: soon)", "schema error: 'soon' is not of type 'number'", "tests/test_config.py::test_bad_config_names_the_key", "pass"),
    Case("C03", "missing dataset field (platform, counts, pairing.timepoint)", "schema error: '<key>' is a required property, full key path", "tests/test_config.py::test_message_gives_the_full_key_path", "pass"),
    Case("C04", "pairing regex that matches no value", "PairingError naming dataset, pairing.patient.regex and field", "tests/test_pairing.py::test_regex_matching_nothing_is_an_error", "pass"),
    Case("C05", "pairing map whose keys match no value", "PairingError naming dataset, field and the map's keys", F + "test_map_matching_nothing_names_field_and_keys", "pass"),
    Case("C06", "pairing field that is not a sample field", "PairingError listing the fields found", "tests/test_pairing.py::test_missing_field_lists_available_fields", "pass"),
    Case("C07", "timepoint value not in the map", "PairingError naming the value and pairing.timepoint.map", "tests/test_pairing.py::test_unmapped_timepoint_value_names_it", "pass"),
    Case("C08", "duplicated sample ids in a local sample sheet", "PrepareError naming the file, both lines and the id", F + "test_duplicate_sample_ids_in_sample_sheet", "fixed"),
    Case("C09", "duplicated GSM ids in a series matrix", "SeriesMatrixError naming file, line and GSM", "tests/test_geo.py::test_series_matrix_errors", "pass"),
    Case("C10", "a patient with two pre samples", "PairingError naming patient and both samples, fix: pairing.exclude", "tests/test_pairing.py::test_two_pre_samples_for_one_patient_is_an_error", "pass"),
    Case("C11", "one complete pair only (end to end through prepare)", "PairingError naming dataset, '1 complete pre/post pair' and why samples were dropped (was: pointed at a pairs.tsv that a failed prepare never writes)", F + "test_one_pair_only_fails_before_any_output", "fixed"),
    Case("C12", "response missing for a response contrast", "PairingError naming dataset and contrast at the design check", "tests/test_pairing.py::test_response_contrast_without_response_fails_at_design_check", "pass"),
    Case("C13", "pairing.exclude names an unknown sample", "PairingError naming the sample", "tests/test_pairing.py::test_exclude_unknown_sample_is_an_error", "pass"),
    Case("C14", "count table columns that match no sample title", "PrepareError naming the count file, the columns and counts.sample_key", F + "test_count_columns_matching_no_sample", "pass"),
    Case("C15", "counts.file / series_matrix_file with a path ('../../etc/passwd', 'a/b')", "schema error (bare file names only)", F + "test_config_strings_with_shell_metacharacters_or_paths[counts_file_traversal]", "fixed"),
    # --- data
    Case("D01", "series matrix without table markers", "SeriesMatrixError naming file and the markers", "tests/test_geo.py::test_series_matrix_errors", "pass"),
    Case("D02", "ragged series matrix row", "SeriesMatrixError naming file, line, cells found/expected", "tests/test_geo.py::test_series_matrix_errors", "pass"),
    Case("D03", "non-numeric series matrix value", "SeriesMatrixError naming file, line, column and value", "tests/test_geo.py::test_series_matrix_errors", "pass"),
    Case("D04", "Inf in a series matrix", "SeriesMatrixError naming file, line and column (was: passed on, failed later in de)", F + "test_infinite_value_in_series_matrix", "fixed"),
    Case("D05", "NaN/null cells and a sample with no values at all", "recovery: cells are NA; the empty sample is dropped with reason in the pair ledger", F + "test_sample_without_values_is_dropped_with_reason", "pass"),
    Case("D06", "Inf in a local log2 expression table", "PrepareError naming file, line, column and gene", F + "test_local_expression_faults[inf]", "fixed"),
    Case("D07", "ragged local expression table", "PrepareError naming the file (was: raw pandas ParserError)", F + "test_local_expression_faults[ragged]", "fixed"),
    Case("D08", "NA / Inf in a count table", "CountTableError naming file, line and column", F + "test_count_table_non_finite[Inf]", "pass"),
    Case("D09", "negative or non-integer counts to the count path", "CountTableError naming file, line, column; hint to use values: log2", "tests/test_geo.py::test_count_table_errors", "pass"),
    Case("D10", "non-integer counts handed to the DESeq2 paths directly", "ValueError naming gene and sample", "tests/test_de_general.py::test_bad_counts_are_reported", "pass"),
    Case("D11", "all-zero genes (counts)", "recovery: kept with NA statistics, as DESeq2", "tests/test_de_general.py::test_all_zero_genes_kept_with_nan", "pass"),
    Case("D12", "all-zero probes (array intensities)", "recovery: log2 of 0 is NA, probe dropped and counted as no_values", F + "test_all_zero_probes_are_dropped_and_counted", "pass"),
    Case("D13", "duplicate gene ids in a count table", "CountTableError naming file, line and gene", "tests/test_geo.py::test_count_table_errors", "pass"),
    Case("D14", "duplicate gene ids in a local expression table", "PrepareError naming file, both lines and gene (was: silently kept twice)", F + "test_local_expression_faults[duplicate]", "fixed"),
    Case("D15", "several probes for one symbol", "recovery: highest-mean probe kept, documented rule", "tests/test_expression.py::test_collapse_probes_documented_rule", "pass"),
    Case("D16", "probes with several symbols ('A /// B')", "recovery: dropped and counted as multi_symbol", "tests/test_expression.py::test_collapse_probes_documented_rule", "pass"),
    Case("D17", "annotation whose IDs do not match the table", "PrepareError naming dataset, series matrix and platform files", F + "test_annotation_ids_not_matching_names_both_files", "fixed"),
    Case("D18", "platform the config does not know (series is GPL570, config says GPL96)", "PrepareError naming the file, both platforms and platform.accession (was: silently used)", F + "test_platform_not_the_series_platform", "fixed"),
    Case("D19", "annotation without a symbol column / unknown symbol_column", "PlatformError naming file and the columns found", "tests/test_geo.py::test_platform_errors", "pass"),
    Case("D20", "empty GMT", "GeneSetError naming file: empty GMT", "tests/test_genesets.py::test_read_gmt_errors_name_file_and_line", "pass"),
    Case("D21", "malformed GMT lines (one field, no genes, duplicate set, empty name)", "GeneSetError naming file and line", "tests/test_genesets.py::test_read_gmt_errors_name_file_and_line", "pass"),
    Case("D22", "gene sets with no genes in the data", "OverlapError naming the GMT file and collection (was: collection only)", F + "test_gene_sets_with_no_genes_in_data_name_the_file", "fixed"),
    Case("D23", "a tar archive (GSExxx_RAW.tar) given as counts.file", "CountTableError: is a tar archive, not extracted", F + "test_crafted_tar_is_never_extracted", "fixed"),
    # --- network and disk
    Case("N01", "HTTP 404", "DownloadError naming URL, not retried", "tests/test_download.py::test_404_is_clear_and_not_retried", "pass"),
    Case("N02", "HTTP 500 then 200", "recovery: retried with backoff, file kept", "tests/test_download.py::test_retry_500_then_200", "pass"),
    Case("N03", "HTTP 500 forever", "DownloadError after retries, no .part", "tests/test_download.py::test_500_forever_gives_up", "pass"),
    Case("N04", "timeout", "retried, then DownloadError naming URL", "tests/test_download.py::test_timeout_is_retried_then_clear_error", "pass"),
    Case("N05", "connection reset mid-body", "retried, then DownloadError; nothing kept", "tests/test_download.py::test_body_cut_short_is_retried_then_fails", "pass"),
    Case("N06", "truncated gzip", "DownloadError, no .part, old file untouched", "tests/test_download.py::test_truncated_gzip_not_kept_and_old_dest_untouched", "pass"),
    Case("N07", "HTML challenge page instead of data", "DownloadError with the browser/offline/mirror fix", "tests/test_download.py::test_html_challenge_page_is_rejected", "pass"),
    Case("N08", "sha256 mismatch of a cached file, offline", "DownloadError naming file and both hashes", "tests/test_download.py::test_offline_sha_mismatch_is_an_error", "pass"),
    Case("N09", "sha256 mismatch of a cached file, online", "recovery: fetched again", "tests/test_download.py::test_online_sha_mismatch_or_unrecorded_file_is_refetched", "pass"),
    Case("N10", "offline mode with a missing file", "DownloadError naming the path to fill by hand", "tests/test_download.py::test_offline_missing_file_names_it", "pass"),
    Case("N11", "stale .part left by a killed download", "recovery: overwritten, never used as the file", F + "test_stale_part_file_is_not_trusted", "pass"),
    Case("N12", "download manifest without its columns", "DownloadError naming the manifest: delete it to refetch", F + "test_damaged_manifest_is_named", "pass"),
    Case("N13", "read-only results folder (read-only tmpfs mount, or chattr +i)", "OSError 'cannot write <file>', folder named; nothing created, old file intact", F + "test_read_only_folder_real", "fixed"),
    Case("N14", "read-only / full cache folder for a download", "DownloadError naming source and destination (was: raw OSError naming the .part)", F + "test_read_only_folder_real", "fixed"),
    Case("N15", "rename fails (EROFS, simulated) / disk full mid-write (ENOSPC, simulated)", "OSError naming the output; no temp file; old file intact", F + "test_write_errors_simulated", "fixed"),
    Case("N16", "temp file left by a SIGKILLed writer", "recovery: removed when the output is written again", F + "test_stale_temp_file_is_removed_on_rewrite", "fixed"),
    # --- interruption and reproducibility
    Case("I01", "SIGTERM to the run's process group while `de` runs", "rerun with the default profile finishes; results byte-identical to an uninterrupted run", F + "test_interrupted_run_recovers[SIGTERM]", "pass"),
    Case("I02", "SIGKILL to the run's process group while `de` runs", "rerun stops with Snakemake's stale-lock message; after `--unlock`, rerun (default profile: rerun-incomplete) finishes byte-identical", F + "test_interrupted_run_recovers[SIGKILL]", "pass"),
    Case("R01", "two clean runs of the demo", "byte-identical TSV and PNG outputs", "tests/test_workflow.py::test_second_run_is_byte_identical", "pass"),
    # --- security
    Case("S01", "rules that could hand config strings to a shell", "no shell:/run:/shell() anywhere; every rule is a script:", F + "test_no_rule_reaches_a_shell", "pass"),
    Case("S02", "config strings with shell metacharacters", "rejected by the schema where they become names or paths; free text accepted and inert", F + "test_config_strings_with_shell_metacharacters_or_paths", "pass"),
    Case("S03", "metacharacters in description/treatment through a real run", "run succeeds, no canary file created", F + "test_metacharacters_in_free_text_are_inert", "pass"),
    Case("S04", "downloaded files executed", "no process spawning, eval, pickle or archive extraction in the package or scripts; downloads are not executable", F + "test_package_never_executes_or_extracts", "pass"),
    Case("S05", "archive members with ../, absolute paths and symlinks", "no archive is extracted; a crafted tar is refused and writes nothing", F + "test_crafted_tar_is_never_extracted", "pass"),
]


# ---------------------------------------------------------------------------- the index


def _functions(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    return {n.name for n in ast.walk(tree) if isinstance(n, ast.FunctionDef) and n.name.startswith("test")}


def test_matrix_points_at_real_tests():
    ids = [c.id for c in MATRIX]
    assert len(ids) == len(set(ids))
    assert len(MATRIX) >= 30
    assert {c.outcome for c in MATRIX} <= {"pass", "fixed"}
    for case in MATRIX:
        file, _, node = case.test.partition("::")
        func = node.split("[")[0]
        assert func in _functions(ROOT / file), f"{case.id}: {case.test} does not exist"
        if "[" in node and file.endswith("test_faults.py"):
            param = node.split("[")[1].rstrip("]")
            assert param in Path(__file__).read_text(), f"{case.id}: no parameter {param}"


def test_matrix_covers_every_item_of_the_issue():
    text = " ".join(f"{c.input} {c.expected}" for c in MATRIX).lower()
    for item in [
        "unknown config key", "wrong type", "missing dataset field", "matches no value",
        "not in the map", "duplicated sample ids", "two pre samples", "one complete pair",
        "response missing", "without table markers", "ragged", "non-numeric", "inf",
        "negative or non-integer", "all-zero", "duplicate gene", "a /// b", "do not match",
        "config does not know", "empty gmt", "malformed gmt", "no genes in the data", "404",
        "500 then 200", "timeout", "reset mid-body", "truncated gzip", "sha256 mismatch",
        "offline mode with a missing file", "read-only results folder", "sigkill", "sigterm",
        "two clean runs", "shell", "archive", "executed",
    ]:
        assert item in text, item


# ---------------------------------------------------------------------------- helpers


def local_dataset(tmp_path, n_pairs=4, values="log2", expr=None, extra_rows=()):
    """A 'local' dataset: genes x samples TSV and a sample sheet, n_pairs complete pairs."""
    samples = [f"S{i}_{t}" for i in range(1, n_pairs + 1) for t in ("pre", "post")]
    sheet = pd.DataFrame(
        {"sample": samples, "patient": [s.split("_")[0] for s in samples],
         "time": [s.split("_")[1] for s in samples]}
    )
    sheet = pd.concat([sheet, pd.DataFrame(list(extra_rows), columns=sheet.columns)], ignore_index=True)
    sheet.to_csv(tmp_path / "samples.tsv", sep="\t", index=False)
    if expr is None:
        rng = np.random.default_rng(1)
        expr = pd.DataFrame(rng.normal(8, 1, (30, len(sheet))), columns=sheet["sample"],
                            index=pd.Index([f"G{i}" for i in range(30)], name="gene"))
    if isinstance(expr, str):
        (tmp_path / "expr.tsv").write_text(expr)
    else:
        expr.to_csv(tmp_path / "expr.tsv", sep="\t")
    ds = {"kind": "local", "values": values,
          "expression": str(tmp_path / "expr.tsv"), "samples": str(tmp_path / "samples.tsv"),
          "pairing": {"patient": {"field": "patient"},
                      "timepoint": {"field": "time", "map": {"pre": "pre", "post": "post"}}}}
    return ds, {"expression": ds["expression"], "samples": ds["samples"]}


def series_matrix(path: Path, n_pairs=3, platform="GPL96", cell=None, n_probes=12, intensity=False):
    """A minimal GEO series matrix: patient/timepoint characteristics, probes p0.. on a log scale.
    ``cell=(probe, sample, text)`` overrides one value."""
    gsm = [f"GSM{i}" for i in range(1, 2 * n_pairs + 1)]
    pat = [f"P{(i - 1) // 2 + 1}" for i in range(1, 2 * n_pairs + 1)]
    tp = ["pre" if i % 2 else "post" for i in range(1, 2 * n_pairs + 1)]
    q = lambda xs: "\t".join(f'"{x}"' for x in xs)  # noqa: E731
    lines = [
        '!Series_geo_accession\t"GSE1"', f'!Series_platform_id\t"{platform}"',
        f"!Sample_title\t{q(f'{p}_{t}' for p, t in zip(pat, tp))}",
        f"!Sample_geo_accession\t{q(gsm)}",
        f"!Sample_platform_id\t{q([platform] * len(gsm))}",
        f"!Sample_characteristics_ch1\t{q(f'patient: {p}' for p in pat)}",
        f"!Sample_characteristics_ch1\t{q(f'timepoint: {t}' for t in tp)}",
        "!series_matrix_table_begin", f'"ID_REF"\t{q(gsm)}',
    ]
    rng = np.random.default_rng(2)
    for j in range(n_probes):
        vals = [f"{2 ** (v + 4) if intensity else v:.3f}" for v in rng.normal(8, 1, len(gsm))]
        if cell and cell[0] == f"p{j}":
            vals[gsm.index(cell[1])] = cell[2]
        lines.append(f'"p{j}"\t' + "\t".join(vals))
    lines.append("!series_matrix_table_end")
    path.write_text("\n".join(lines) + "\n")
    return path


def array_dataset(tmp_path, platform="GPL96", annot_ids=None, **kw):
    sm = series_matrix(tmp_path / "GSE1_series_matrix.txt", platform=platform, **kw)
    ids = annot_ids or [f"p{j}" for j in range(kw.get("n_probes", 12))]
    annot = tmp_path / "GPL96.annot"
    annot.write_text("ID\tGene symbol\n" + "".join(f"{i}\tGENE{k}\n" for k, i in enumerate(ids)))
    ds = {"kind": "geo_series_matrix", "accession": "GSE1",
          "platform": {"accession": "GPL96", "file": "annot"},
          "pairing": {"patient": {"field": "patient"},
                      "timepoint": {"field": "timepoint", "map": {"pre": "pre", "post": "post"}}}}
    return ds, {"series_matrix": str(sm), "platform": str(annot)}


# ---------------------------------------------------------------------------- config


def test_map_matching_nothing_names_field_and_keys():
    samples = pd.DataFrame({"patient": ["A", "A", "B", "B"], "time": ["t0", "t1", "t0", "t1"]},
                           index=pd.Index(["s1", "s2", "s3", "s4"], name="sample"))
    rules = {"patient": {"field": "patient"},
             "timepoint": {"field": "time", "map": {"baseline": "pre", "surgery": "post"}}}
    # values the map does not know are named with the map's keys...
    with pytest.raises(PairingError, match=r"dataset 'cohort'.*'t0', 't1' of field 'time'.*\['baseline', 'surgery'\]"):
        pair_samples(samples, rules, "cohort")
    # ...and a field with no value at all for the map to match says so
    samples["time"] = ""
    with pytest.raises(PairingError, match=r"dataset 'cohort': no value of field 'time' matches a key of pairing\.timepoint\.map"):
        pair_samples(samples, rules, "cohort")


def test_duplicate_sample_ids_in_sample_sheet(tmp_path):
    ds, files = local_dataset(tmp_path, extra_rows=[("S2_pre", "S9", "pre")])
    with pytest.raises(PrepareError) as err:
        prepare_dataset("d", ds, files)
    msg = str(err.value)
    assert "samples.tsv, line 10: duplicate sample id 'S2_pre' (first on line 4)" in msg


def test_one_pair_only_fails_before_any_output(tmp_path):
    ds, files = local_dataset(tmp_path, n_pairs=1, extra_rows=[("S7_pre", "S7", "pre")])
    with pytest.raises(PairingError) as err:
        prepare_dataset("lonely", ds, files)
    msg = str(err.value)
    assert "dataset 'lonely': 1 complete pre/post pair(s)" in msg and "at least 3" in msg
    assert "unpaired: patient S7 has no post sample: 1" in msg
    assert "pairs.tsv" not in msg  # it was named before, but a failed prepare writes no ledger


def test_count_columns_matching_no_sample(tmp_path):
    sm = series_matrix(tmp_path / "GSE1_series_matrix.txt", n_probes=0)
    counts = tmp_path / "GSE1_counts.tsv"
    counts.write_text("gene\tsampleA\tsampleB\nG1\t1\t2\n")
    ds = {"kind": "geo_counts", "accession": "GSE1", "counts": {"file": counts.name},
          "pairing": {"patient": {"field": "patient"},
                      "timepoint": {"field": "timepoint", "map": {"pre": "pre", "post": "post"}}}}
    with pytest.raises(PrepareError, match=r"GSE1_counts\.tsv: count table column\(s\) \['sampleA', 'sampleB'\] \(2 in all\) match no sample title.*counts\.sample_key"):
        prepare_dataset("d", ds, {"series_matrix": str(sm), "counts": str(counts)})


# ---------------------------------------------------------------------------- data


def test_infinite_value_in_series_matrix(tmp_path):
    for text in ("Inf", "-inf"):
        sm = series_matrix(tmp_path / "GSE1_series_matrix.txt", cell=("p4", "GSM3", text))
        with pytest.raises(geo.SeriesMatrixError, match=r"GSE1_series_matrix\.txt, line 14, column GSM3: infinite value"):
            geo.parse_series_matrix(sm)
    # the slow (non-numeric) parse path checks too
    sm = series_matrix(tmp_path / "GSE1_series_matrix.txt", cell=("p4", "GSM3", "Infinity"))
    with pytest.raises(geo.SeriesMatrixError, match="line 14, column GSM3: infinite"):
        geo.parse_series_matrix(sm)


def test_sample_without_values_is_dropped_with_reason(tmp_path):
    ds, files = local_dataset(tmp_path, n_pairs=4)
    expr = pd.read_csv(files["expression"], sep="\t", index_col=0)
    expr["S4_post"] = np.nan
    expr.iloc[3, 0] = np.nan
    expr.to_csv(files["expression"], sep="\t", na_rep="NA")
    p = prepare_dataset("d", ds, files)
    ledger = p.ledger.set_index("sample")
    assert ledger.loc["S4_post", "reason"] == "no expression values for this sample"
    assert ledger.loc["S4_pre", "reason"] == "unpaired: patient S4 has no post sample"
    # the unpaired pre sample stays available to unpaired contrasts; the empty one is gone
    assert list(p.expression.columns) == [f"S{i}_{t}" for i in (1, 2, 3) for t in ("pre", "post")] + ["S4_pre"]
    assert p.summary["pairs"] == 3
    assert np.isnan(p.expression.loc["G3", "S1_pre"])  # a missing cell stays missing


@pytest.mark.parametrize("fault", ["inf", "ragged", "duplicate"])
def test_local_expression_faults(tmp_path, fault):
    ds, files = local_dataset(tmp_path, n_pairs=3)
    lines = Path(files["expression"]).read_text().splitlines()
    if fault == "inf":
        cells = lines[5].split("\t")
        cells[2] = "inf"
        lines[5] = "\t".join(cells)
        expected = r"expr\.tsv, line 6, column S1_post: infinite value for gene 'G4'"
    elif fault == "ragged":
        lines[5] += "\t1.0\t2.0"
        expected = r"expr\.tsv: cannot read the expression table as a tab-separated table"
    else:
        lines[7] = "G1" + lines[7][lines[7].index("\t"):]
        expected = r"expr\.tsv, line 8: duplicate gene id 'G1' \(first on line 3\)"
    Path(files["expression"]).write_text("\n".join(lines) + "\n")
    with pytest.raises(PrepareError, match=expected):
        prepare_dataset("d", ds, files)


@pytest.mark.parametrize("value", ["Inf", "-inf", "NaN", "NA"])
def test_count_table_non_finite(tmp_path, value):
    path = tmp_path / "GSE1_counts.tsv.gz"
    import gzip

    path.write_bytes(gzip.compress(f"gene\tA\tB\ng1\t1\t2\ng2\t{value}\t4\n".encode()))
    with pytest.raises(geo.CountTableError, match=rf"GSE1_counts\.tsv\.gz, line 3, column A: value '{value}' is not a count"):
        counts.read_count_table(path)


def test_all_zero_probes_are_dropped_and_counted(tmp_path):
    ds, files = local_dataset(tmp_path, n_pairs=3, values="intensity")
    expr = pd.read_csv(files["expression"], sep="\t", index_col=0)
    expr = 2.0 ** (expr + 4)  # intensities: GEO2R's rule asks for log2
    expr.loc["G5"] = 0.0
    expr.to_csv(files["expression"], sep="\t")
    p = prepare_dataset("d", ds, files)
    assert p.summary["log2_transformed"] is True
    assert p.expression.loc["G5"].isna().all()  # log2(0) is NA, not -inf
    assert np.isfinite(p.expression.drop(index="G5").to_numpy()).all()

    ds, files = array_dataset(tmp_path, n_probes=12, intensity=True)
    sm = Path(files["series_matrix"])
    sm.write_text(re.sub(r'"p5"\t[^\n]*', '"p5"' + "\t0" * 6, sm.read_text()))
    p = prepare_dataset("d", ds, files)
    assert p.summary["probe_collapse"]["no_values"] == 1 and "GENE5" not in p.expression.index
    assert p.summary["genes"] == 11 and p.summary["log2_transformed"] is True


def test_annotation_ids_not_matching_names_both_files(tmp_path):
    ds, files = array_dataset(tmp_path, annot_ids=[f"ILMN_{j}" for j in range(12)])
    with pytest.raises(PrepareError) as err:
        prepare_dataset("arr", ds, files)
    msg = str(err.value)
    assert "dataset 'arr'" in msg and "GSE1_series_matrix.txt with" in msg and "GPL96.annot" in msg
    assert "only 0 of the 12 probe IDs" in msg and "wrong platform?" in msg


def test_platform_not_the_series_platform(tmp_path):
    ds, files = array_dataset(tmp_path, platform="GPL570")  # same probe IDs, other platform
    with pytest.raises(PrepareError, match=r"GSE1_series_matrix\.txt: the series matrix is from platform\(s\) \['GPL570'\], but the config's platform\.accession is 'GPL96'"):
        prepare_dataset("arr", ds, files)
    ds, files = array_dataset(tmp_path, platform="GPL96")
    assert prepare_dataset("arr", ds, files).summary["genes"] == 12  # the right one passes


def test_gene_sets_with_no_genes_in_data_name_the_file(tmp_path):
    gmt = tmp_path / "mouse.gmt"
    gmt.write_text("SET_A\td\tMus1\tMus2\tMus3\nSET_B\td\tMus4\tMus5\n")
    with pytest.raises(OverlapError, match=r"mouse\.gmt: mousesets: only 0\.0% of a typical set's genes"):
        enrich_run.load_sets({"mousesets": str(gmt)}, pd.Index(["TP53", "BRCA1"]))


# ---------------------------------------------------------------------------- network and disk


def test_stale_part_file_is_not_trusted(tmp_path):
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "f.txt").write_text("fresh\n")
    dest = tmp_path / "cache/f.txt"
    dest.parent.mkdir()
    (dest.parent / "f.txt.part").write_text("half of a killed down")
    row = download.fetch(mirror / "f.txt", dest, expect="text")
    assert dest.read_text() == "fresh\n" and row["status"] == "downloaded"
    assert sorted(p.name for p in dest.parent.iterdir()) == ["f.txt"]


def test_damaged_manifest_is_named(tmp_path):
    manifest = tmp_path / "manifest.tsv"
    manifest.write_text("file\turl\nx\ty\n")
    with pytest.raises(DownloadError, match=r"manifest\.tsv lacks column\(s\) \['bytes', 'sha256', 'date', 'status'\].*delete it to refetch"):
        download.fetch_all([("a/b.txt", "b.txt")], tmp_path, tmp_path, manifest)


@pytest.fixture
def read_only_dir(tmp_path):
    """A folder that root cannot write either: a read-only tmpfs mount, else chattr +i.

    chmod does not stop root, so the test needs one of these (or skips); the simulated
    variant below always runs."""
    d = tmp_path / "ro"
    d.mkdir()
    if shutil.which("mount") and subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(d)],
                                                capture_output=True).returncode == 0:
        (d / "old.tsv").write_text("old\n")
        if subprocess.run(["mount", "-o", "remount,ro", str(d)], capture_output=True).returncode == 0:
            yield d, "Read-only file system"
            subprocess.run(["umount", str(d)], check=True)
            return
        subprocess.run(["umount", str(d)], check=True)
    (d / "old.tsv").write_text("old\n")
    if shutil.which("chattr") and subprocess.run(["chattr", "+i", str(d)], capture_output=True).returncode == 0:
        yield d, "Operation not permitted"
        subprocess.run(["chattr", "-i", str(d)], check=True)
        return
    pytest.skip("neither a read-only tmpfs mount nor chattr +i is available here")


def test_read_only_folder_real(read_only_dir, tmp_path):
    d, problem = read_only_dir
    for dest in (d / "new.tsv", d / "old.tsv", d / "sub/x.tsv"):
        with pytest.raises(OSError) as err:
            io.write_tsv(pd.DataFrame({"a": [1.0]}), dest)
        assert f"cannot write {dest}" in str(err.value) and problem in str(err.value)
    assert sorted(p.name for p in d.iterdir()) == ["old.tsv"] and (d / "old.tsv").read_text() == "old\n"
    src = tmp_path / "mirror/x.txt"
    src.parent.mkdir()
    src.write_text("data\n")
    with pytest.raises(DownloadError) as err:
        download.fetch(src, d / "x.txt", expect="text")
    assert f"to {d / 'x.txt'}" in str(err.value) and problem in str(err.value)
    assert sorted(p.name for p in d.iterdir()) == ["old.tsv"]


def test_write_errors_simulated(tmp_path, monkeypatch):
    dest = tmp_path / "de.tsv"
    dest.write_text("old\n")
    with pytest.raises(OSError) as err:  # disk full while the table is written
        with io.atomic_path(dest) as tmp:
            tmp.write_text("half")
            raise OSError(errno.ENOSPC, "No space left on device")
    assert err.value.errno == errno.ENOSPC and f"cannot write {dest}" in str(err.value)

    def refuse(src, dst):
        raise OSError(errno.EROFS, "Read-only file system", str(dst))

    monkeypatch.setattr(io.os, "replace", refuse)  # the rename onto the output fails
    with pytest.raises(OSError) as err:
        io.write_tsv(pd.DataFrame({"a": [1.0]}), dest)
    assert err.value.errno == errno.EROFS and f"cannot write {dest}" in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["de.tsv"] and dest.read_text() == "old\n"
    # an unrelated OSError inside the block keeps its own message
    monkeypatch.undo()
    with pytest.raises(FileNotFoundError, match="input.tsv"):
        with io.atomic_path(dest):
            open(tmp_path / "input.tsv")


def test_stale_temp_file_is_removed_on_rewrite(tmp_path):
    (tmp_path / ".de.tsv.k1ll3d_x.tmp").write_text("half")  # a SIGKILLed writer's leftover
    (tmp_path / ".de.tsv.gz.k1ll3d_x.tmp").write_text("another output's")
    io.write_tsv(pd.DataFrame({"a": [1.0]}), tmp_path / "de.tsv")
    assert sorted(p.name for p in tmp_path.iterdir()) == [".de.tsv.gz.k1ll3d_x.tmp", "de.tsv"]


# ---------------------------------------------------------------------------- interruption


def _repo_copy(dst: Path) -> Path:
    """A copy of the workflow whose config/config.yaml (the default profile's) is the demo cut
    to one dataset and one contrast, for the runs that stop after a few rules."""
    dst.mkdir(parents=True)
    for name in ["Snakefile", "workflow", "src", "config", "profiles", "envs"]:
        src = ROOT / name
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, dst / name)
    shutil.copytree(ROOT / "resources/demo", dst / "resources/demo")
    cfg = yaml.safe_load((dst / "config/config.yaml").read_text())
    cfg["datasets"] = {"demo_rnaseq": {**cfg["datasets"]["demo_rnaseq"], "contrasts": ["post_vs_pre", "interaction"]}}
    (dst / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    return dst


def _snakemake(workdir: Path, *extra: str) -> subprocess.CompletedProcess:
    """The default invocation: the workflow profile (profiles/default) supplies the config and
    rerun-incomplete."""
    return subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *extra], cwd=workdir,
                          capture_output=True, text=True, timeout=1800)


def _outputs(workdir: Path) -> dict[str, bytes]:
    """Every file under results/ (hidden ones too) except logs and benchmarks (timings)."""
    base = workdir / "results"
    return {str(p.relative_to(base)): p.read_bytes() for p in sorted(base.rglob("*"))
            if p.is_file() and not {"logs", "benchmarks"} & set(p.relative_to(base).parts)}


@pytest.fixture(scope="module")
def uninterrupted(demo_run):
    """The session's uninterrupted run of the whole demo (tests/conftest.py::demo_run)."""
    return _outputs(demo_run)


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGTERM", "SIGKILL"])
def test_interrupted_run_recovers(tmp_path, demo_run, geo_server, uninterrupted, sig):
    """Kill a run (the whole process group, the de job's forked workers too) while rule de runs
    demo_rnaseq's contrasts (one job, the interaction table written last by its worker); the
    table must not exist, and the next run (after --unlock, which Snakemake asks for when it
    was SIGKILLed) must give exactly the uninterrupted run's files. The run starts from a copy
    of the finished session run with the interaction table, the job's log and the claims table
    deleted, so demo_rnaseq's de runs first and everything downstream of it is redone."""
    work = copy_run(demo_run, tmp_path / "run")
    de_log = work / "results/logs/demo_rnaseq/de.log"
    de_table = work / "results/demo_rnaseq/de/interaction.tsv"
    for path in (de_table, de_log, work / "results/claims.tsv"):
        path.unlink()
    log = open(tmp_path / "run.out", "w")
    proc = subprocess.Popen(workflow_cmd(work, geo_server), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 1200
    while not de_log.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.poll() is None, "the run ended before the de rule started"
    os.killpg(proc.pid, getattr(signal, sig))  # the whole group: Snakemake and the rule's script
    proc.wait(timeout=600)
    log.close()
    assert proc.returncode != 0
    assert not de_table.exists(), "killed mid-rule: the table must not exist"
    assert not (work / "results/claims.tsv").exists()

    rerun = run_workflow(work, geo_server)
    if sig == "SIGKILL":  # Snakemake cannot release its lock when killed: it says so
        assert rerun.returncode != 0
        assert "Directory cannot be locked" in rerun.stderr and "--unlock" in rerun.stderr
        assert run_workflow(work, geo_server, "--unlock").returncode == 0
        rerun = run_workflow(work, geo_server)
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    # the workflow profile (rerun-incomplete) applied; named relative to the cwd when found there
    assert re.search(r"Using workflow specific profile \S*profiles/default ", rerun.stderr), rerun.stderr[:500]
    after = _outputs(work)
    assert sorted(after) == sorted(uninterrupted)  # no leftover temp files either
    assert any(k.endswith(".tsv") for k in after) and "claims.tsv" in after
    for name, data in uninterrupted.items():
        if name.endswith(".tsv"):
            assert after[name] == data, name


# ---------------------------------------------------------------------------- security


def _rule_files() -> list[Path]:
    return [ROOT / "Snakefile", ROOT / "workflow/Snakefile", *sorted((ROOT / "workflow/rules").glob("*.smk"))]


def test_no_rule_reaches_a_shell():
    rules = scripts = 0
    for path in _rule_files():
        text = path.read_text()
        for n, line in enumerate(text.splitlines(), start=1):
            assert not re.match(r"^\s+(shell|run)\s*:", line), f"{path.name}, line {n}: {line.strip()}"
            assert not re.search(r"\bshell\s*\(", line), f"{path.name}, line {n}: {line.strip()}"
        rules += len(re.findall(r"^\s*rule( \w+)?:", text, flags=re.M))  # named, or in a loop
        scripts += len(re.findall(r"^\s+script:", text, flags=re.M))
    assert rules >= 10 and scripts == rules - 1  # every rule but `all` is a script: rule


@pytest.fixture
def config():
    return yaml.safe_load((ROOT / "config/config.yaml").read_text())


EVIL = "x; rm -rf / $(touch /tmp/prepost_pwned) `id`"


@pytest.mark.parametrize(
    "where, mutate",
    [
        ("accession", lambda c: c["datasets"]["demo_array"].update(accession="GSE1; rm -rf /")),
        ("platform", lambda c: c["datasets"]["demo_array"]["platform"].update(accession="GPL1 && id")),
        ("dataset_name", lambda c: c["datasets"].update({"a;b": c["datasets"]["demo_array"]})),
        ("collection_name", lambda c: c["enrichment"]["collections"][0].update(name="c$(id)")),
        ("collection_url", lambda c: c["enrichment"]["collections"].append({"name": "u", "url": "file:///etc/passwd"})),
        ("counts_file_traversal", lambda c: c["datasets"]["demo_rnaseq"]["counts"].update(file="../../etc/passwd")),
        ("counts_file_metachar", lambda c: c["datasets"]["demo_rnaseq"]["counts"].update(file=EVIL)),
        ("series_matrix_file", lambda c: c["datasets"]["demo_array"].update(series_matrix_file="../x_series_matrix.txt.gz")),
        ("dotdot", lambda c: c["datasets"]["demo_array"].update(series_matrix_file="..")),
    ],
)
def test_config_strings_with_shell_metacharacters_or_paths(config, where, mutate):
    from snakemake.exceptions import WorkflowError
    from snakemake.utils import validate

    validate(copy.deepcopy(config), SCHEMA)
    mutate(config)
    with pytest.raises(WorkflowError):
        validate(config, SCHEMA)


def test_free_text_with_metacharacters_is_valid(config):
    from snakemake.utils import validate

    config["datasets"]["demo_array"]["description"] = EVIL
    config["datasets"]["demo_array"]["treatment"] = [EVIL]
    validate(config, SCHEMA)  # free text is allowed: S01/S04 show it never reaches a shell


@pytest.mark.slow
def test_metacharacters_in_free_text_are_inert(tmp_path):
    work = _repo_copy(tmp_path / "repo")
    canary = tmp_path / "pwned"
    evil = f"x'; touch {canary}1; \"$(touch {canary}2)\" `touch {canary}3` | touch {canary}4 #"
    cfg = yaml.safe_load((work / "config/config.yaml").read_text())
    cfg["datasets"]["demo_rnaseq"].update(description=evil, treatment=["chemotherapy", evil])
    (work / "config/config.yaml").write_text(yaml.safe_dump(cfg))
    proc = _snakemake(work, "results/demo_rnaseq/pairs.tsv")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "results/demo_rnaseq/pairs.tsv").exists()
    assert not list(tmp_path.glob("pwned*"))


FORBIDDEN_MODULES = {"subprocess", "pty", "pickle", "shelve", "marshal", "zipfile"}
FORBIDDEN_CALLS = {"system", "popen", "execv", "execve", "execvp", "spawnv", "spawnl", "startfile",
                   "eval", "exec", "extractall", "unpack_archive", "read_pickle", "load_module"}


def test_package_never_executes_or_extracts(tmp_path):
    files = sorted((ROOT / "src/prepost").rglob("*.py")) + sorted((ROOT / "workflow/scripts").glob("*.py"))
    tar_uses = set()
    for path in files:
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = {a.name.split(".")[0] for a in node.names}
            elif isinstance(node, ast.ImportFrom):
                names = {(node.module or "").split(".")[0]}
            else:
                names = set()
            assert not names & FORBIDDEN_MODULES, f"{path.name}:{node.lineno} imports {names & FORBIDDEN_MODULES}"
            if isinstance(node, ast.Call):
                f = node.func
                name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
                assert name not in FORBIDDEN_CALLS, f"{path.name}:{node.lineno} calls {name}"
                if isinstance(f, ast.Attribute) and getattr(f.value, "id", "") == "tarfile":
                    tar_uses.add((f.attr, path.name))
                # a tar is never extracted to disk (GEO _RAW.tar RCC members are read in memory)
                on_str = isinstance(f, ast.Attribute) and getattr(f.value, "attr", "") == "str"  # pandas .str.extract
                assert name != "extractall" and (name != "extract" or on_str), f"{path.name}:{node.lineno} calls {name}"
                for kw in node.keywords:  # np.load(..., allow_pickle=True)
                    assert kw.arg != "allow_pickle", f"{path.name}:{node.lineno}"
    # archives are recognised; only the RCC reader opens one, to read its *.RCC members in memory
    assert {u for u, f in tar_uses if f != "rcc.py"} <= {"is_tarfile"}
    assert {u for u, f in tar_uses if f == "rcc.py"} <= {"is_tarfile", "open"}
    # a downloaded file is stored without execute permission
    src = tmp_path / "m/run.sh"
    src.parent.mkdir()
    src.write_text("#!/bin/sh\ntouch pwned\n")
    os.chmod(src, 0o755)
    download.fetch(src, tmp_path / "cache/run.sh", expect="text")
    assert (tmp_path / "cache/run.sh").stat().st_mode & 0o111 == 0
    assert not (tmp_path / "pwned").exists()


def test_crafted_tar_is_never_extracted(tmp_path):
    """GEO's GSExxx_RAW.tar: prepost does not extract archives. A tar with ../, absolute and
    symlink members, downloaded and given as the count table, is refused and writes nothing."""
    outside = tmp_path / "outside"
    build = tmp_path / "build"
    build.mkdir()
    (build / "counts.tsv").write_text("gene\tA\nG1\t1\n")
    tar_path = tmp_path / "mirror/GSE1_RAW.tar"
    tar_path.parent.mkdir()
    with tarfile.open(tar_path, "w") as tar:
        tar.add(build / "counts.tsv", arcname="GSM1_counts.tsv")
        tar.add(build / "counts.tsv", arcname="../outside/evil.tsv")
        tar.add(build / "counts.tsv", arcname=str(outside / "abs_evil.tsv"))
        link = tarfile.TarInfo("link_to_outside")
        link.type, link.linkname = tarfile.SYMTYPE, str(outside / "linked")
        tar.addfile(link)
    cache = tmp_path / "cache/demo"
    download.fetch(tar_path, cache / "GSE1_RAW.tar", expect="text")
    assert sorted(p.name for p in cache.iterdir()) == ["GSE1_RAW.tar"]
    for path in (cache / "GSE1_RAW.tar", tar_path):
        with pytest.raises(geo.CountTableError, match=r"GSE1_RAW\.tar is a tar archive.*does not extract archives"):
            counts.read_count_table(path)
    assert not outside.exists() and not (tmp_path / "evil.tsv").exists()
    assert sorted(p.name for p in cache.iterdir()) == ["GSE1_RAW.tar"]
    gz = tmp_path / "GSE1_RAW.tar.gz"  # compressed archive, as some series ship
    with tarfile.open(gz, "w:gz") as tar:
        tar.add(build / "counts.tsv", arcname="../evil2.tsv")
    with pytest.raises(geo.CountTableError, match="is a tar archive"):
        counts.read_count_table(gz)
    assert not (tmp_path / "evil2.tsv").exists()
