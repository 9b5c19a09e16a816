# R side of the prepost DE benchmark: DESeq2 (counts) or limma (arrays) on one simulated
# paired dataset written by benchmarks/de/run.py.
#
# Usage: Rscript benchmarks/de/bench.R counts|arrays DATA_PREFIX OUT_TSV
#   reads DATA_PREFIX_counts.tsv (or _arrays.tsv) and DATA_PREFIX_samples.tsv (sample,
#   patient, timepoint); writes gene, mean_expr, log2fc, lfc_se, stat, pvalue, padj with 17
#   significant digits, and prints "compute_seconds <s>" (model fit only, reading excluded)
#   and the BLAS in use (the benchmark is meant for OpenBLAS).
# Counts: DESeq(~ patient + timepoint), pre the reference level, results(contrast =
#   c("timepoint", "post", "pre")) with defaults (alpha 0.1, independent filtering, Cook's).
# Arrays: eBayes(lmFit(x, model.matrix(~ patient + timepoint))), coef "timepointpost".

suppressPackageStartupMessages({
  library(limma)
  library(DESeq2)
})
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3 || !(args[1] %in% c("counts", "arrays"))) {
  stop("usage: Rscript bench.R counts|arrays DATA_PREFIX OUT_TSV")
}
mode <- args[1]; prefix <- args[2]; out_file <- args[3]

si <- sessionInfo()
cat("blas", si$BLAS, "\n")
s <- read.delim(paste0(prefix, "_samples.tsv"), colClasses = "character")
s$patient <- factor(s$patient)
s$timepoint <- relevel(factor(s$timepoint), ref = "pre")
rownames(s) <- s$sample
x <- as.matrix(read.delim(paste0(prefix, "_", mode, ".tsv"), row.names = 1, check.names = FALSE))
x <- x[, s$sample]

t0 <- proc.time()[["elapsed"]]
if (mode == "counts") {
  dds <- DESeqDataSetFromMatrix(x, colData = s, design = ~ patient + timepoint)
  dds <- DESeq(dds, quiet = TRUE)
  res <- results(dds, contrast = c("timepoint", "post", "pre"))
  out <- data.frame(gene = rownames(res), mean_expr = res$baseMean, log2fc = res$log2FoldChange,
                    lfc_se = res$lfcSE, stat = res$stat, pvalue = res$pvalue, padj = res$padj,
                    betaIter = as.double(mcols(dds)$betaIter))
} else {
  fit <- eBayes(lmFit(x, model.matrix(~ patient + timepoint, data = s)))
  tt <- topTable(fit, coef = "timepointpost", number = Inf, sort.by = "none")
  out <- data.frame(gene = rownames(tt), mean_expr = tt$AveExpr, log2fc = tt$logFC,
                    lfc_se = tt$logFC / tt$t, stat = tt$t, pvalue = tt$P.Value,
                    padj = tt$adj.P.Val)
}
cat("compute_seconds", proc.time()[["elapsed"]] - t0, "\n")
for (j in seq_along(out)) {
  if (is.double(out[[j]])) out[[j]] <- ifelse(is.na(out[[j]]), "NA", sprintf("%.17g", out[[j]]))
}
tmp <- paste0(out_file, ".part")
write.table(out, tmp, sep = "\t", quote = FALSE, row.names = FALSE)
file.rename(tmp, out_file)
