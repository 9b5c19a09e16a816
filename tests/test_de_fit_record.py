"""Every DE table records what produced it (table.attrs["fit"]: engine, design, dispersion
trend), the de rule writes that record next to the table (de/{contrast}.fit.json), and the
report's methods name the engine and trend per contrast, warning about a fallback from
prepost.de.nb to pydeseq2 or a mean trend."""

import json
import warnings
from importlib import metadata
from pathlib import Path

import pandas as pd
import pytest

from prepost import files
from prepost.de import contrasts as C
from prepost.de import fit as F
from prepost.de import nb
from prepost.de.general import deseq2
from prepost.de.run import run_contrast
from prepost.files import read_tsv
from prepost.report import build as report

FIX = Path(__file__).parent / "fixtures" / "de"
DESEQ2_KEYS = {"engine", "method", "design", "dispersion_trend", "trend_coefficients", "prior_variance",
               "genes_refit_with_optim", "optim_genes"}


@pytest.fixture(scope="module")
def resp():
    """120 genes x 10 pairs (5 responders, 5 non-responders)."""
    return read_tsv(FIX / "resp_counts.tsv", index_col=0), read_tsv(FIX / "resp_counts_samples.tsv", dtype=str)


def test_nb_table_carries_its_fit_record(resp):
    counts, sheet = resp
    table = F.fit_contrast(counts, "counts", sheet, "post_vs_pre", "resp")
    assert set(F.CHECK_COLUMNS) <= set(table.columns)  # the join of the cross-checks kept it
    fit = table.attrs["fit"]
    assert DESEQ2_KEYS <= set(fit)
    assert fit["engine"] == "prepost.de.nb" and fit["dispersion_trend"] == "parametric"
    assert fit["design"] == "~ patient + timepoint"
    assert set(fit["trend_coefficients"]) == {"asymptDisp", "extraPois"}
    assert fit["genes_refit_with_optim"] == len(fit["optim_genes"])
    assert "fallback" not in fit
    assert table.attrs["contrast"]["pairs"] == 10 and table.attrs["contrast"]["samples"] == 20
    assert table.attrs["contrast"]["tested"] == {"timepoint[post]": 1.0}


def test_pydeseq2_table_carries_its_fit_record():
    """A design with covariates goes to pydeseq2."""
    counts = read_tsv(FIX / "cov_counts.tsv", index_col=0)
    sheet = read_tsv(FIX / "cov_samples.tsv", dtype={"sample": str, "patient": str})
    table = F.fit_contrast(counts, "counts", sheet, "post_vs_pre", "cov", covariates=["batch", "age", "site"])
    fit = table.attrs["fit"]
    assert DESEQ2_KEYS <= set(fit)
    assert fit["engine"] == "pydeseq2" and fit["version"] == metadata.version("pydeseq2")
    assert fit["design"] == "~ patient + timepoint + batch"  # age, site: absorbed by the patient block
    assert fit["dispersion_trend"] == "parametric"
    assert set(fit["trend_coefficients"]) == {"asymptDisp", "extraPois"}
    assert all(v > 0 for v in fit["trend_coefficients"].values()) and fit["prior_variance"] > 0
    assert fit["genes_refit_with_optim"] is None and fit["optim_genes"] is None
    assert "fallback" not in fit
    assert table.attrs["contrast"]["covariates"] == ["batch[b2]"]


def test_array_table_carries_its_fit_record():
    expr = read_tsv(FIX / "resp_arrays_expr.tsv", index_col=0)
    sheet = read_tsv(FIX / "resp_arrays_samples.tsv", dtype=str)
    for name in ("post_vs_pre", "responder_vs_non_responder_pre"):
        fit = F.fit_contrast(expr, "log2", sheet, name, "arr").attrs["fit"]
        assert fit["engine"] == "limma-style moderated t (prepost.de.limma)"
        assert fit["dispersion_trend"] is None and fit["trend_coefficients"] is None
        assert fit["df_prior"] > 0 and fit["s2_prior"] > 0
    assert fit["design"] == "~ response"


@pytest.mark.parametrize("name, front", [
    ("post_vs_pre", "fast_paired_deseq2"),
    ("interaction", "fast_grouped_paired_deseq2"),
    ("responder_vs_non_responder_pre", "fast_two_group_deseq2"),
])
def test_fallback_to_pydeseq2_is_recorded(resp, monkeypatch, caplog, name, front):
    counts, sheet = resp

    def fails(*args, **kwargs):
        raise ArithmeticError("parametric dispersion fit failed (test)")

    monkeypatch.setattr(nb, front, fails)
    with caplog.at_level("WARNING", logger="prepost.de.fit"):
        table = F.fit_contrast(counts, "counts", sheet, name, "resp")
    fit = table.attrs["fit"]
    assert fit["engine"] == "pydeseq2" and fit["dispersion_trend"] == "parametric"
    assert fit["fallback"] == "parametric dispersion fit failed (test)"
    assert fit["fallback_from"] == "prepost.de.nb"
    assert "falling back to pydeseq2" in caplog.text and name in caplog.text


def test_mean_trend_is_recorded(resp):
    """30 genes: the parametric trend fails in prepost.de.nb (so pydeseq2 takes the contrast)
    and in pydeseq2, which switches to its mean trend with a UserWarning."""
    counts, sheet = resp
    with pytest.warns(UserWarning, match="mean-based dispersion trend"):
        table = F.fit_contrast(counts.iloc[:30], "counts", sheet, "post_vs_pre", "resp")
    fit = table.attrs["fit"]
    assert fit["engine"] == "pydeseq2" and fit["fallback_from"] == "prepost.de.nb"
    assert "parametric dispersion fit failed" in fit["fallback"]
    assert fit["dispersion_trend"] == "mean"
    assert set(fit["trend_coefficients"]) == {"mean"} and fit["trend_coefficients"]["mean"] > 0
    # pydeseq2 called directly (no fallback) records the same
    spec = C.build_contrast(sheet, "post_vs_pre", "resp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        direct = deseq2(counts.iloc[:30], spec.samples, spec.design, spec.contrast)
    assert direct.attrs["fit"]["dispersion_trend"] == "mean" and "fallback" not in direct.attrs["fit"]


def _prepared(tmp_path, data, sheet, values):
    files.write_parquet(data, tmp_path / "expression.parquet")
    files.write_tsv(sheet, tmp_path / "samples.tsv")
    (tmp_path / "prepare.json").write_text(json.dumps({"dataset": "resp", "values": values}))
    return [tmp_path / n for n in ("expression.parquet", "samples.tsv", "prepare.json")]


def _strict_json(path):
    def refuse(name):
        raise ValueError(f"non-standard JSON constant {name}")

    return json.loads(Path(path).read_text(), parse_constant=refuse)


def test_run_contrast_writes_the_fit_record(resp, tmp_path):
    counts, sheet = resp
    inputs = _prepared(tmp_path, counts, sheet, "counts")
    dest, fit_dest = tmp_path / "de" / "interaction.tsv", tmp_path / "de" / "interaction.fit.json"
    table = run_contrast(*inputs, "interaction", dest, fit_dest=fit_dest)
    record = _strict_json(fit_dest)
    written = read_tsv(dest)
    assert record["dataset"] == "resp" and record["contrast"] == "interaction" and record["values"] == "counts"
    assert record["samples"] == 20 and record["pairs"] == 10
    assert record["n_responder"] == 5 and record["n_non_responder"] == 5
    assert record["genes"] == len(written) == 120
    assert record["genes_tested"] == int(written["pvalue"].notna().sum())
    assert record["genes_padj_below_0.05"] == int((written["padj"] < 0.05).sum())
    assert record["genes_padj_below_0.1"] == int((written["padj"] < 0.1).sum())
    assert record["engine"] == "prepost.de.nb" and record["dispersion_trend"] == "parametric"
    assert record["optim_genes"] == table.attrs["fit"]["optim_genes"]
    assert record["lfc_shrink"] == "none"
    # byte-identical when written again
    before = fit_dest.read_bytes()
    run_contrast(*inputs, "interaction", dest, fit_dest=fit_dest)
    assert fit_dest.read_bytes() == before


def test_run_contrast_writes_the_array_fit_record(tmp_path):
    expr = read_tsv(FIX / "resp_arrays_expr.tsv", index_col=0)
    sheet = read_tsv(FIX / "resp_arrays_samples.tsv", dtype=str)
    inputs = _prepared(tmp_path, expr, sheet, "log2")
    run_contrast(*inputs, "responder_vs_non_responder_pre", tmp_path / "t.tsv", fit_dest=tmp_path / "t.fit.json")
    record = _strict_json(tmp_path / "t.fit.json")
    assert record["engine"].startswith("limma-style") and record["dispersion_trend"] is None
    n = C.build_contrast(sheet, "responder_vs_non_responder_pre", "resp").summary["samples"]
    assert "pairs" not in record and record["samples"] == n == 12 and "lfc_shrink" not in record


def test_json_writer_keeps_to_standard_json(tmp_path):
    files.write_json({"df_prior": float("inf"), "x": float("nan"), "y": 0.1234567891, "n": 3}, tmp_path / "a.json")
    assert _strict_json(tmp_path / "a.json") == {"df_prior": "Inf", "x": None, "y": 0.123457, "n": 3}


NB_FIT = {"engine": "prepost.de.nb", "method": "DESeq2 1.38 (DESeq + results, betaPrior FALSE), vectorised "
          "re-implementation", "design": "~ patient + timepoint", "dispersion_trend": "parametric",
          "trend_coefficients": {"asymptDisp": 0.0341, "extraPois": 2.094}, "prior_variance": 0.37,
          "genes_refit_with_optim": 24, "optim_genes": [f"G{i:05d}" for i in range(24)]}
MEAN_FIT = {"engine": "pydeseq2", "version": "0.5.4", "method": "DESeq2's method with pydeseq2 0.5.4",
            "design": "~ patient + timepoint", "dispersion_trend": "mean", "trend_coefficients": {"mean": 0.21},
            "prior_variance": 0.25, "genes_refit_with_optim": None, "optim_genes": None,
            "fallback": "dispersion fit did not converge", "fallback_from": "prepost.de.nb"}


def _datasets(*fits):
    contrasts = [{"name": name, **report._fit_entry(fit)} for name, fit in fits]
    return [{"name": "dsA", "values": "counts", "pairs": "10", "contrasts": contrasts}]


def test_methods_name_engine_and_trend_per_contrast():
    text = report.methods_text({}, _datasets(("post_vs_pre", NB_FIT), ("interaction", NB_FIT)), {})
    assert ("Engine and dispersion trend, dsA: post_vs_pre, interaction: prepost.de.nb (DESeq2 1.38 "
            "re-implementation), parametric trend 0.0341 + 2.09/mean, 24 genes refitted with L-BFGS-B as "
            "DESeq2's optim.") in text
    assert "Warning" not in text and "G00001" not in text


def test_methods_warn_about_fallback_and_mean_trend():
    text = report.methods_text({}, _datasets(("post_vs_pre", MEAN_FIT)), {})
    assert "post_vs_pre: pydeseq2 0.5.4, mean trend 0.21." in text
    assert ("Warning: dsA post_vs_pre fell back from prepost.de.nb to pydeseq2 0.5.4 (dispersion fit did "
            "not converge).") in text
    assert "Warning: dsA post_vs_pre used a mean dispersion trend because the parametric fit failed." in text
    assert "parametric trend" not in text and "parametric dispersion trend" not in text


def test_methods_name_the_array_engine():
    fit = {"engine": "limma-style moderated t (prepost.de.limma)", "method": "limma lmFit + contrasts.fit + "
           "eBayes (Smyth 2004), re-implementation equal to limma 3.54", "dispersion_trend": None,
           "trend_coefficients": None, "s2_prior": 0.09, "df_prior": "Inf"}
    datasets = [{"name": "dsB", "values": "log2", "contrasts": [{"name": "post_vs_pre", **report._fit_entry(fit)}]}]
    text = report.methods_text({}, datasets, {})
    assert "Engine, dsB: post_vs_pre: limma-style moderated t (prepost.de.limma)." in text
    assert "trend" not in text.split("Engine, dsB")[1]
    assert report._fit_line(fit) == ("limma-style moderated t (prepost.de.limma); variance prior: df Inf, "
                                     "s0\u00b2 0.09")


def test_methods_without_fit_records_claim_no_trend():
    text = report.methods_text({}, [{"name": "dsA", "values": "counts", "contrasts": [{"name": "post_vs_pre"}]}], {})
    assert "post_vs_pre: engine not recorded" in text and "parametric" not in text


def test_report_shows_engine_and_trend_per_contrast(tmp_path):
    de = pd.DataFrame({"gene": ["A", "B"], "mean_expr": 1.0, "log2fc": [1.0, -1.0], "lfc_se": 0.2,
                       "stat": [5.0, -5.0], "pvalue": [1e-6, 1e-5], "padj": [1e-5, 1e-5]})
    files.write_tsv(de, tmp_path / "de.tsv")
    contrasts = {}
    for name, fit in (("post_vs_pre", NB_FIT), ("interaction", MEAN_FIT)):
        files.write_json(fit, tmp_path / f"{name}.fit.json")
        contrasts[name] = {"table": str(tmp_path / "de.tsv"), "fit": str(tmp_path / f"{name}.fit.json")}
    layout = {"datasets": {"dsA": {"contrasts": contrasts}}}
    report.build_report(layout, tmp_path / "r.html", {"datasets": {"dsA": {}}})
    html = (tmp_path / "r.html").read_text()
    assert "post_vs_pre (2 of 2 genes with padj &lt; 0.05); prepost.de.nb, parametric trend</summary>" in html
    assert ("Fit: prepost.de.nb (DESeq2 1.38 re-implementation); design ~ patient + timepoint; dispersions: "
            "parametric trend 0.0341 + 2.09/mean, prior variance 0.37; 24 genes refitted") in html
    assert 'interaction (2 of 2 genes with padj &lt; 0.05); pydeseq2, mean trend <span class="flag">' in html
    assert '<p class="flag">Warning: dsA interaction fell back from prepost.de.nb to pydeseq2 0.5.4' in html
    assert "G00001" not in html  # the optim gene list stays in the JSON
    with pytest.raises(report.ReportError, match="DE fit record"):
        bad = dict(contrasts, post_vs_pre={"fit": str(tmp_path / "missing.json")})
        report.build_report({"datasets": {"dsA": {"contrasts": bad}}}, tmp_path / "x.html", {})


def test_grouped_contrasts_share_one_fit_and_give_the_same_tables(resp, monkeypatch):
    """The de job's grouped piece: with a ``shared`` dict the within-group and interaction
    contrasts fit ~ patient + post:response once; tables and records equal those of separate
    calls, and each call gets its own copy (editing one does not touch the next)."""
    counts, sheet = resp
    names = ["post_vs_pre_responder", "post_vs_pre_non_responder", "interaction"]
    alone = {n: F.fit_contrast(counts, "counts", sheet, n, "resp") for n in names}
    calls = []
    real = nb.fast_grouped_paired_deseq2
    monkeypatch.setattr(nb, "fast_grouped_paired_deseq2", lambda *a, **k: calls.append(1) or real(*a, **k))
    shared = {}
    together = {}
    for n in names:
        together[n] = F.fit_contrast(counts, "counts", sheet, n, "resp", shared=shared)
        together[n].attrs["fit"]["touched"] = True  # a caller editing its copy
    assert len(calls) == 1
    for n in names:
        pd.testing.assert_frame_equal(together[n], alone[n])
        got = {k: v for k, v in together[n].attrs["fit"].items() if k != "touched"}
        assert got == alone[n].attrs["fit"]
        assert together[n].attrs["contrast"] == alone[n].attrs["contrast"]
        pd.testing.assert_frame_equal(pd.DataFrame(together[n].attrs["model"]), pd.DataFrame(alone[n].attrs["model"]))


def test_a_failed_shared_fit_is_not_retried(resp, monkeypatch):
    """A grouped fit whose trend fails goes to pydeseq2 for each contrast, as without sharing;
    the failing fit runs once."""
    counts, sheet = resp
    calls = []

    def failing(*a, **k):
        calls.append(1)
        raise ArithmeticError("parametric trend failed (test)")

    monkeypatch.setattr(nb, "fast_grouped_paired_deseq2", failing)
    shared = {}
    for n in ["post_vs_pre_responder", "interaction"]:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            t = F.fit_contrast(counts, "counts", sheet, n, "resp", shared=shared)
        assert t.attrs["fit"]["engine"] == "pydeseq2" and "trend failed" in t.attrs["fit"]["fallback"]
    assert len(calls) == 1
