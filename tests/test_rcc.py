"""prepost.io.rcc on written RCC files (well-formed and malformed), GEO-style tars read in
memory, lane QC and housekeeping screen on small constructed lanes, and control-gene size
factors (the real files: tests/test_nanostring_real.py)."""

from __future__ import annotations

import gzip
import io
import tarfile

import numpy as np
import pandas as pd
import pytest

from prepost.io import rcc
from prepost.qc import lanes
from prepost.stats import control_mask, size_factors

POS = [("POS_A(128)", 128), ("POS_B(32)", 32), ("POS_C(8)", 8), ("POS_D(2)", 2), ("POS_E(0.5)", 0.5), ("POS_F(0.125)", 0.125)]


def rcc_text(counts: dict | None = None, *, fov=(555, 540), bd=0.9, drop_block=None, extra_rows=(),
             pos_scale=100.0, neg=(5, 8, 6, 9, 7, 5, 6, 10)) -> str:
    counts = counts or {"GENE1": 100, "GENE2": 2000, "GENE3": 50, "HK1": 900, "HK2": 1500, "HK3": 700}
    rows = ["CodeClass,Name,Accession,Count"]
    for g, c in counts.items():
        cls = "Housekeeping" if g.startswith("HK") else "Endogenous"
        rows.append(f"{cls},{g},NM_{abs(hash(g)) % 10**6}.1,{c}")
    for name, conc in POS:
        rows.append(f"Positive,{name},ERCC_{name[:5]},{int(round(conc * pos_scale))}")
    for i, v in enumerate(neg):
        rows.append(f"Negative,NEG_{'ABCDEFGH'[i]}(0),ERCC_N{i},{v}")
    rows += list(extra_rows)
    blocks = {
        "Header": ["FileVersion,1.7", "SoftwareVersion,4.0.0.3"],
        "Sample_Attributes": ["ID,x", "Owner,", "Comments,", "Date,20170227", "GeneRLF,NS_TEST", "SystemAPF,n6_vDV1"],
        "Lane_Attributes": ["ID,1", f"FovCount,{fov[0]}", f"FovCounted,{fov[1]}", "ScannerID,S1",
                            "StagePosition,1", f"BindingDensity,{bd}", "CartridgeID,C1", "CartridgeBarcode,"],
        "Code_Summary": rows,
        "Messages": [],
    }
    out = []
    for name, lines in blocks.items():
        if name == drop_block:
            continue
        out += [f"<{name}>", *lines, f"</{name}>", ""]
    return "\r\n".join(out)


def write(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(text)
    return p


def test_reads_a_folder(tmp_path):
    write(tmp_path, "P1-1_0_0_BL.RCC", rcc_text())
    write(tmp_path, "P1-2_1_0_BL.RCC", rcc_text({"GENE1": 7, "GENE2": 8, "GENE3": 9, "HK1": 1, "HK2": 2, "HK3": 3}))
    write(tmp_path, "notes.txt", "not an RCC file")
    s = rcc.read_rcc_set(tmp_path)
    assert list(s.counts.columns) == ["P1-1_0_0_BL", "P1-2_1_0_BL"]
    assert s.counts.loc["GENE1"].tolist() == [100, 7]
    assert s.counts.loc["NEG_H(0)"].tolist() == [10, 10]
    assert s.probes.loc["HK2", "CodeClass"] == "Housekeeping"
    assert s.lanes.loc["P1-1_0_0_BL", "FovCounted"] == 540
    assert s.lanes.loc["P1-1_0_0_BL", "Sample.GeneRLF"] == "NS_TEST"
    assert s.lanes.loc["P1-1_0_0_BL", "LaneID"] == "1"
    sheet = rcc.samples_from_names(list(s.counts.columns), r"(?P<patient>[^-]+)-(?P<n>\d+)_(?P<tp>\d)_(?P<pcr>\d)(?:_(?P<pam50>[A-Z]{2}))?")
    assert sheet.loc["P1-2_1_0_BL", ["patient", "tp", "pam50"]].tolist() == ["P1", "1", "BL"]


def test_list_of_paths_and_gzip(tmp_path):
    a = write(tmp_path, "a.RCC", rcc_text())
    b = tmp_path / "b.RCC.gz"
    b.write_bytes(gzip.compress(rcc_text().encode()))
    s = rcc.read_rcc_set([str(a), str(b)])
    assert list(s.counts.columns) == ["a", "b"]
    assert (s.counts["a"] == s.counts["b"]).all()


def _tar(tmp_path, members: dict[str, bytes]):
    path = tmp_path / "GSE1_RAW.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path


def test_geo_raw_tar_read_in_memory_without_extraction(tmp_path):
    text = rcc_text().encode()
    path = _tar(tmp_path, {
        "GSM1_s1.RCC.gz": gzip.compress(text),
        "../../evil/GSM2_s2.RCC": text,  # a traversal path is only a name here
        "/abs/GSM3_s3.RCC": text,
        "GSE1_readme.txt": b"ignored: not an RCC file",
    })
    out = tmp_path / "out"
    out.mkdir()
    s = rcc.read_rcc_set(path)
    assert sorted(s.counts.columns) == ["GSM1_s1", "GSM2_s2", "GSM3_s3"]
    assert s.sources["GSM2_s2"] == f"{path}:../../evil/GSM2_s2.RCC"
    assert not (tmp_path.parent / "evil").exists() and list(out.iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["GSE1_RAW.tar", "out"]


def test_tar_without_rcc_is_an_error(tmp_path):
    path = _tar(tmp_path, {"a.txt": b"x"})
    with pytest.raises(rcc.RccError, match="holds no"):
        rcc.read_rcc_set(path)


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"drop_block": "Lane_Attributes"}, r"bad\.RCC: missing block\(s\) <Lane_Attributes>"),
        ({"drop_block": "Code_Summary"}, r"missing block\(s\) <Code_Summary>"),
        ({"counts": {"GENE1": "12x", "HK1": 5}}, r"bad\.RCC, line \d+: count '12x' of probe 'GENE1' is not a non-negative integer"),
        ({"counts": {"GENE1": "-3", "HK1": 5}}, r"count '-3' of probe 'GENE1'"),
        ({"extra_rows": ["Endogenous,GENE1,NM_1.1,5"]}, r"bad\.RCC, line \d+: probe 'GENE1' appears twice \(first on line \d+\)"),
        ({"extra_rows": ["Endogenous,GENE9,5"]}, r"row has 3 fields; expected 4"),
        ({"extra_rows": ["Spike,GENE9,NM_1,5"]}, r"CodeClass 'Spike'"),
        ({"fov": (555, "n/a")}, r"FovCounted is 'n/a'; expected a number"),
    ],
)
def test_malformed_files_name_file_line_and_expectation(tmp_path, kwargs, match):
    write(tmp_path, "bad.RCC", rcc_text(**kwargs))
    with pytest.raises(rcc.RccError, match=match):
        rcc.read_rcc_set(tmp_path)


def test_unclosed_block_and_text_outside(tmp_path):
    write(tmp_path, "u.RCC", rcc_text().replace("</Header>", ""))
    with pytest.raises(rcc.RccError, match=r"<Sample_Attributes> opens inside <Header>"):
        rcc.read_rcc_set(tmp_path)
    write(tmp_path, "u.RCC", "stray\r\n" + rcc_text())
    with pytest.raises(rcc.RccError, match=r"u\.RCC, line 1: text outside any <block>"):
        rcc.read_rcc_set(tmp_path)


def test_files_of_different_panels_or_names(tmp_path):
    write(tmp_path, "a.RCC", rcc_text())
    write(tmp_path, "b.RCC", rcc_text({"GENE1": 1, "OTHER": 2, "HK1": 3}))
    with pytest.raises(rcc.RccError, match=r"b\.RCC: its probes differ from those of .*a\.RCC"):
        rcc.read_rcc_set(tmp_path)
    (tmp_path / "b.RCC").unlink()
    sub = tmp_path / "sub"
    sub.mkdir()
    write(sub, "a.RCC", rcc_text())
    with pytest.raises(rcc.RccError, match="sample id 'a'.*file names must be unique"):
        rcc.read_rcc_set([str(tmp_path / "a.RCC"), str(sub / "a.RCC")])


def test_sample_regex_must_match_every_name():
    with pytest.raises(rcc.RccError, match="does not match"):
        rcc.samples_from_names(["P1-1_0_0", "weird"], r"(?P<p>P\d)-\d_\d_\d")
    with pytest.raises(rcc.RccError, match="no named group"):
        rcc.samples_from_names(["a"], r"a")


def _set(tmp_path, lanes_kw: dict[str, dict]):
    for name, kw in lanes_kw.items():
        write(tmp_path, f"{name}.RCC", rcc_text(**kw))
    return rcc.read_rcc_set(tmp_path)


def test_lane_qc_flags_each_vendor_rule(tmp_path):
    s = _set(tmp_path, {
        "ok": {},
        "imaging": {"fov": (555, 400)},            # 0.72 < 0.75
        "density": {"bd": 2.4},                    # > 2.25
        "lod": {"pos_scale": 10.0, "neg": (5, 8, 6, 9, 7, 5, 6, 10)},  # POS_E = 5 <= mean + 2 SD = 9.2
    })
    q = lanes.lane_qc(s.counts, s.probes, s.lanes).set_index("sample")
    assert not q.loc["ok", "flag"]
    assert q.loc["imaging", "reason"] == "FOV counted/count < 0.75"
    assert q.loc["density", "reason"] == "binding density outside 0.1-2.25"
    assert "POS_E (0.5 fM) <= mean(NEG) + 2 SD" in q.loc["lod", "reason"]
    neg = np.array([5, 8, 6, 9, 7, 5, 6, 10], float)
    assert q.loc["ok", "neg_mean_2sd"] == pytest.approx(neg.mean() + 2 * neg.std(ddof=1))
    # the older MAX/FLEX range flags the same lane's 2.0 as well
    s2 = _set(tmp_path / "x" if (tmp_path / "x").mkdir() is None else tmp_path, {"bd2": {"bd": 2.0}})
    q2 = lanes.lane_qc(s2.counts, s2.probes, s2.lanes, {"binding_density": [0.1, 1.8]}).set_index("sample")
    assert q2.loc["bd2", "flag"] and not q2.loc["bd2", "binding_density_pass"]


def test_linearity_flag(tmp_path):
    s = _set(tmp_path, {"lin": {}})
    counts = s.counts.copy()
    counts.loc["POS_A(128)", "lin"] = 10  # breaks the dose-response
    q = lanes.lane_qc(counts, s.probes, s.lanes).set_index("sample")
    assert q.loc["lin", "pos_linearity_r2"] < 0.95 and q.loc["lin", "flag"]
    x = np.log2([c for _, c in POS])
    y = np.log2(np.maximum(counts.loc[[n for n, _ in POS], "lin"].to_numpy(float), 1))
    assert q.loc["lin", "pos_linearity_r2"] == pytest.approx(np.corrcoef(x, y)[0, 1] ** 2)


def test_housekeeping_screen_low_and_unstable():
    rng = np.random.default_rng(1)
    n = 20
    depth = rng.lognormal(0, 0.3, n)
    hk = {f"HK{i}": np.round(1000 * (i + 1) * depth * rng.lognormal(0, 0.05, n)) for i in range(8)}
    hk["HKLOW"] = np.full(n, 3.0)
    hk["HKWILD"] = np.round(1000 * depth * rng.lognormal(0, 1.5, n))
    neg = {f"NEG_{c}(0)": rng.integers(3, 12, n).astype(float) for c in "ABCDEFGH"}
    counts = pd.DataFrame({**hk, **neg}).T
    counts.columns = [f"s{i}" for i in range(n)]
    probes = pd.DataFrame({"CodeClass": ["Housekeeping"] * len(hk) + ["Negative"] * 8}, index=counts.index)
    keep, out = lanes.screen_housekeeping(counts, probes)
    assert set(out) == {"HKLOW", "HKWILD"}
    assert out["HKLOW"].startswith("low:") and out["HKWILD"].startswith("unstable:")
    assert keep == [f"HK{i}" for i in range(8)]


def test_control_gene_size_factors_against_direct_formula():
    rng = np.random.default_rng(3)
    counts = rng.poisson(200, size=(30, 6)).astype(float)
    counts[0, 2] = 0  # a zero count: gene left out of the geometric means, as DESeq2
    mask = np.zeros(30, bool)
    mask[[0, 3, 5, 7, 11]] = True
    sf = size_factors(counts, control=mask)
    ctrl = counts[[3, 5, 7, 11]]  # gene 0 has a zero: infinite log, excluded
    geo = np.exp(np.log(ctrl).mean(axis=1))
    expected = np.exp(np.median(np.log(ctrl / geo[:, None]), axis=0))  # DESeq2: median of log ratios
    np.testing.assert_allclose(sf, expected, rtol=1e-12)
    assert control_mask(["a", "b"], ["b"]).tolist() == [False, True]
    with pytest.raises(ValueError, match="not in the count matrix"):
        control_mask(["a"], ["zz"])


def test_geo_raw_tar_with_series_characteristics(tmp_path):
    """GEO's layout: GSEnnn_RAW.tar of GSMnnn_<name>.RCC.gz, sample fields from the series
    matrix characteristics (patient, visit), joined by the GSM prefix of each file name."""
    from prepost.io import datasets
    from prepost.prepare.dataset import PrepareError, prepare_dataset

    rng = np.random.default_rng(5)
    gsms = [f"GSM10{i}" for i in range(8)]
    titles = [f"{p} {v}" for p in (1, 2, 3, 4) for v in ("pre", "post")]
    members = {}
    for g, t in zip(gsms, titles):
        counts = {f"GENE{j}": int(rng.integers(50, 5000)) for j in range(30)}
        counts.update({f"HK{j}": int(1000 * (j + 1) * rng.lognormal(0, 0.05)) for j in range(4)})
        members[f"{g}_{t.replace(' ', '_')}.RCC.gz"] = gzip.compress(rcc_text(counts).encode())
    tar = _tar(tmp_path, members)
    q = lambda xs: "\t".join(f'"{x}"' for x in xs)  # noqa: E731
    sm = "\n".join([
        '!Series_geo_accession\t"GSE1"', '!Series_platform_id\t"GPL1"', f"!Sample_title\t{q(titles)}",
        f"!Sample_geo_accession\t{q(gsms)}",
        f"!Sample_characteristics_ch1\t{q(['patient: P' + t.split()[0] for t in titles])}",
        f"!Sample_characteristics_ch1\t{q(['visit: ' + t.split()[1] for t in titles])}",
        "!series_matrix_table_begin", "\t".join(['"ID_REF"'] + [f'"{g}"' for g in gsms]),
        "!series_matrix_table_end", ""])
    (tmp_path / "GSE1_series_matrix.txt.gz").write_bytes(gzip.compress(sm.encode()))
    ds = {"kind": "nanostring", "accession": "GSE1", "rcc": {"path": str(tar)},
          "pairing": {"patient": {"field": "patient"},
                      "timepoint": {"field": "visit", "map": {"pre": "pre", "post": "post"}}}}
    roles = datasets.remote_files(ds)
    assert set(roles) == {"series_matrix"}
    files = {role: str(tmp_path / name) for role, (_, name) in roles.items()}
    files.update({f"rcc_{i}": p for i, p in enumerate(datasets.rcc_files(ds))})
    p = prepare_dataset("panel", ds, files)
    assert sorted(p.expression.columns) == sorted(gsms)
    assert p.summary["pairs"] == 4 and p.summary["accession"] == "GSE1"
    assert p.summary["not_tested"] == ["HK0", "HK1", "HK2", "HK3"]
    assert p.sheet.set_index("sample").loc["GSM101", "rcc_file"].endswith(":GSM101_1_post.RCC.gz")
    # a file without its GSM prefix cannot be matched: an error naming it
    members["renamed_1_pre.RCC.gz"] = members.pop(f"{gsms[0]}_1_pre.RCC.gz")
    tar = _tar(tmp_path, members)
    with pytest.raises(PrepareError, match=r"renamed_1_pre\.RCC\.gz does not start with a GSM accession"):
        prepare_dataset("panel", ds, files)


def test_given_size_factors_reach_every_engine(monkeypatch):
    """fit_contrast with control genes: the nb engines and pydeseq2 (covariates) use the
    control-gene size factors, and the housekeeping genes are not in the table."""
    from prepost.de.fit import fit_contrast

    rng = np.random.default_rng(11)
    n_pat, genes = 6, [f"G{i}" for i in range(60)] + ["HK1", "HK2", "HK3"]
    samples = [f"s{p}{t}" for p in range(n_pat) for t in "ab"]
    depth = rng.lognormal(0, 0.4, len(samples))
    mu = rng.lognormal(5, 1, (len(genes), 1)) * depth
    counts = pd.DataFrame(rng.poisson(mu), index=genes, columns=samples)
    sheet = pd.DataFrame({
        "sample": samples, "patient": [f"P{p}" for p in range(n_pat) for _ in "ab"],
        "timepoint": ["pre", "post"] * n_pat, "response": ["responder"] * 6 + ["non_responder"] * 6,
        "in_pair": True, "usable": True, "age": rng.normal(60, 5, len(samples)).round(),
    })
    hk = ["HK1", "HK2", "HK3"]
    expected = size_factors(counts.to_numpy(float), control=control_mask(counts.index, hk))
    nb_table = fit_contrast(counts, "counts", sheet, "post_vs_pre", "t", control_genes=hk, not_tested=hk)
    assert "HK1" not in set(nb_table["gene"]) and len(nb_table) == 60
    assert nb_table.attrs["fit"]["size_factors"]["control_genes"] == hk
    # the cross-check columns are on the same size factors: recompute one gene's paired t
    from scipy import stats as sps
    g = "G3"
    logv = np.log2(counts.loc[g].to_numpy(float) / expected + 1)
    p_t = sps.ttest_rel(logv[1::2], logv[0::2]).pvalue
    assert nb_table.set_index("gene").loc[g, "paired_t_p"] == pytest.approx(p_t, rel=1e-10)
    # pydeseq2 path (a covariate): the given size factors replace its own
    from prepost.de import fit as fit_module
    seen = {}
    orig = fit_module.deseq2

    def spy(*a, **k):
        out = orig(*a, **k)
        seen["sf"] = out[1]
        return out
    monkeypatch.setattr(fit_module, "deseq2", spy)
    fit_contrast(counts, "counts", sheet, "post_vs_pre", "t", covariates=["age"], control_genes=hk, not_tested=hk)
    np.testing.assert_allclose(seen["sf"][samples].to_numpy(), expected, rtol=1e-12)
