"""prepost.de.nb against R DESeq2 1.38 on the stress simulation (tools/nb_stress.py: genes
counted in the tens of thousands in 1-5 patients, all-zero timepoints and groups, a patient
with a 10x library, zero inflation) at 20, 60 and 200 samples; R results in
tests/fixtures/nb_stress (its make_fixtures.py). The rule is tools/deseq2_agreement.py's."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from deseq2_agreement import agreement
from nb_stress import counts_digest, simulate_stress
from prepost.de import nb

FIX = Path(__file__).parent / "fixtures/nb_stress"
DIGESTS = pd.read_csv(FIX / "digests.tsv", sep="\t").set_index("samples")
SIZES = [int(n) for n in DIGESTS.index]


@pytest.fixture(scope="module", params=SIZES, ids=[f"n{n}" for n in SIZES])
def stress(request):
    n = request.param
    counts, sheet, truth = simulate_stress(n, int(DIGESTS.loc[n, "genes"]))
    assert counts_digest(counts) == DIGESTS.loc[n, "sha256"], (
        "the simulation no longer gives the counts R was run on (numpy's random streams "
        "changed?): rerun tests/fixtures/nb_stress/make_fixtures.py"
    )
    pre = sheet[sheet["timepoint"] == "pre"]
    fits = {"post_vs_pre": nb.fast_paired_deseq2(counts, sheet)}
    fits.update(nb.fast_grouped_paired_deseq2(counts, sheet))
    fits["responder_vs_non_responder"] = nb.fast_two_group_deseq2(counts[pre.index], pre)
    return n, fits, truth


DESIGN = {
    "post_vs_pre": "paired",
    "post_vs_pre_responder": "grouped",
    "post_vs_pre_non_responder": "grouped",
    "interaction": "grouped",
    "responder_vs_non_responder": "two_group",
}


@pytest.mark.parametrize("contrast", list(DESIGN))
def test_equals_deseq2_under_stress(stress, contrast):
    n, fits, _ = stress
    design = DESIGN[contrast]
    r = pd.read_csv(FIX / f"n{n}_{design}.results.tsv.gz", sep="\t")
    last = pd.read_csv(FIX / f"n{n}_{design}.last.tsv.gz", sep="\t")
    r, last = r[r["contrast"] == contrast], last[last["contrast"] == contrast]
    res = agreement(fits[contrast], r, last)
    assert res["failures"] == [], res


def test_the_stress_reaches_optim(stress):
    """The simulation does what it is for: DESeq2 hands the contaminated genes to optim."""
    n, fits, truth = stress
    optim = set(fits["post_vs_pre"].attrs["fit"]["optim_genes"])
    contaminated = set(truth.loc[truth["kind"] == "contamination", "gene"])
    assert len(optim & contaminated) >= len(contaminated) // 3
    assert not optim & set(truth.loc[truth["kind"] == "plain", "gene"])


def test_results_do_not_depend_on_the_memory_layout_of_the_count_frame():
    """A frame built from a row-major array and one built column-major hold the same counts;
    the fit must give the same bits (the row-major one once moved the size factors by 1e-14
    and the optim genes' log2 fold changes by up to 0.07)."""
    counts, sheet, _ = simulate_stress(60, int(DIGESTS.loc[60, "genes"]))
    arr = counts.to_numpy()
    frames = [
        pd.DataFrame(np.ascontiguousarray(arr), index=counts.index, columns=counts.columns),
        pd.DataFrame(np.asfortranarray(arr), index=counts.index, columns=counts.columns),
    ]
    a, b = (nb.fast_paired_deseq2(f, sheet) for f in frames)
    pd.testing.assert_frame_equal(a, b, check_exact=True)
    ga, gb = (nb.fast_grouped_paired_deseq2(f, sheet) for f in frames)
    for contrast in ga:
        pd.testing.assert_frame_equal(ga[contrast], gb[contrast], check_exact=True)
