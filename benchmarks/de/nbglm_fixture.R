# Reference outputs for tests/test_nb.py (R 4.2 + DESeq2 1.38), written to
# tests/fixtures/nbglm/:
#   deseq2_4pairs.tsv  DESeq(~ patient + timepoint) on the first 4 patients of
#                      tests/fixtures/de/counts.tsv (m - p = 3 residual df: DESeq2's simulated
#                      prior-variance branch), results(contrast = c("timepoint","post","pre")),
#                      plus dispGeneEst, dispFit, dispersion and the prior variance
#   lowess.tsv         lowess(x, y, f = 1/5) on a fixed 50-point input (as in results())
# Usage: Rscript benchmarks/de/nbglm_fixture.R   (from the repository root)
suppressPackageStartupMessages(library(DESeq2))
out <- "tests/fixtures/nbglm"
fmt <- function(df) {
  for (j in seq_along(df)) if (is.double(df[[j]]))
    df[[j]] <- ifelse(is.na(df[[j]]), "NA", sprintf("%.17g", df[[j]]))
  df
}
s <- read.delim("tests/fixtures/de/counts_samples.tsv", colClasses = "character")
s <- s[s$patient %in% c("7", "8", "9", "10"), ]
s$patient <- factor(s$patient)
s$timepoint <- relevel(factor(s$timepoint), ref = "pre")
rownames(s) <- s$sample
cts <- as.matrix(read.delim("tests/fixtures/de/counts.tsv", row.names = 1, check.names = FALSE))
dds <- DESeq(DESeqDataSetFromMatrix(cts[, s$sample], colData = s, design = ~ patient + timepoint),
             quiet = TRUE)
res <- results(dds, contrast = c("timepoint", "post", "pre"))
mc <- mcols(dds)
write.table(fmt(data.frame(gene = rownames(res), baseMean = res$baseMean,
                           log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE,
                           stat = res$stat, pvalue = res$pvalue, padj = res$padj,
                           dispGeneEst = mc$dispGeneEst, dispFit = mc$dispFit,
                           dispersion = mc$dispersion,
                           dispPriorVar = attr(dispersionFunction(dds), "dispPriorVar"))),
            file.path(out, "deseq2_4pairs.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
theta <- seq(0.1, 0.95, length = 50)
y <- round(400 * (1 - exp(-8 * theta)) - 300 * theta^2 + 15 * sin(37 * theta))
y[c(7, 31)] <- y[c(7, 31)] + c(60, -45)
write.table(fmt(data.frame(x = theta, y = as.double(y), lowess = lowess(y ~ theta, f = 1/5)$y)),
            file.path(out, "lowess.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
