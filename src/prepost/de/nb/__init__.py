"""DESeq2 1.38 (DESeq() + results(), betaPrior = FALSE) re-implemented vectorised over genes for
the designs whose X'WX has a block structure, so every solve, determinant and trace costs
O(samples) per gene and runs for all genes at once in numpy (pydeseq2 fits one small GLM per
gene in Python, minutes for a 200-sample cohort).

Front-ends (one module each):
- ``paired``: ~ patient + timepoint, one ref and one alt sample per patient
  (fast_paired_deseq2, optional apeGLM shrinkage);
- ``grouped``: ~ patient + alt:group, patients nested in two groups; within-group and
  interaction Wald tests from one fit (fast_grouped_paired_deseq2);
- ``two_group``: unpaired ~ group with DESeq2's Cook's replacement/filtering and its optim
  refit (fast_two_group_deseq2).

The DESeq2 steps they share:
- ``linalg``: X'WX of the patient-blocked, cell-means and intercept-only designs (log det,
  trace), gene-block threading;
- ``irls``: fitBeta (IRLS, minmu 0.5, ridge 1e-6 on the log2 scale of R's coding, deviance
  tolerance 1e-8, DESeq2's give-up rule) and the NB log-density pieces;
- ``optim``: fitNbinomGLMsOptim, the L-BFGS-B refit of the genes IRLS gives up on (real
  cohorts have hundreds: genes counted only in a few contaminated biopsies);
- ``dispersion``: Cox-Reid log posterior and derivative, fitDisp's line search, fitDispGrid,
  starting values, gene-wise finishing, MAP dispersions (prepost.de.vst uses the gene-wise
  part for its blind ~ 1 fit);
- ``trend``: parametric (Gamma identity GLM) and mean trends, prior variance;
- ``filtering``: independent filtering (pvalueAdjustment, alpha 0.1) and R's lowess;
- ``wald``: normal Wald test and the result table; ``apeglm``: lfcShrink(type = "apeglm");
- ``constants``: DESeq2's numeric constants.

Median-of-ratios size factors and count checks come from prepost.stats. Every front-end
leaves ``table.attrs["fit"]`` (engine, design, trend, prior variance, optim genes).
tests/test_nb.py checks the fits against DESeq2 on small fixtures, tests/test_nb_real.py on
real GSE91061 counts, tests/test_nb_stress.py on a stress simulation (tools/nb_stress.py).
"""

from prepost.de.nb.grouped import fast_grouped_paired_deseq2
from prepost.de.nb.paired import fast_paired_deseq2
from prepost.de.nb.two_group import MIN_REPLICATES_FOR_REPLACE, fast_two_group_deseq2

__all__ = [
    "MIN_REPLICATES_FOR_REPLACE",
    "fast_grouped_paired_deseq2",
    "fast_paired_deseq2",
    "fast_two_group_deseq2",
]
