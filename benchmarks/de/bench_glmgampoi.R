# R side of `run.py --methods glmGamPoi DESeq2_glmGamPoi` (issue 19): the same simulated paired
# counts as bench.R, fitted by
#   glmgampoi        glmGamPoi 1.10: glm_gp(~ patient + timepoint, overdispersion shrinkage
#                    on, size factors DESeq2's median of ratios: estimateSizeFactorsForMatrix) + test_de(contrast = "timepointpost")
#                    (its quasi-likelihood F test; lfc on the log2 scale)
#   deseq2_glmgampoi DESeq2 1.38: DESeq(~ patient + timepoint, fitType = "glmGamPoi") +
#                    results(contrast = c("timepoint", "post", "pre")) (Wald, defaults)
#
# Usage: Rscript benchmarks/de/bench_glmgampoi.R glmgampoi|deseq2_glmgampoi DATA_PREFIX OUT_TSV
# Prints "compute_seconds <s>" (model fit only, reading excluded) and the BLAS in use; writes
# gene, mean_expr, log2fc, lfc_se (NA for glmGamPoi: its test reports no standard error), stat,
# pvalue, padj with 17 significant digits (written to OUT_TSV.part, then renamed).

suppressPackageStartupMessages({
  library(glmGamPoi)
  library(DESeq2)
})
args <- commandArgs(trailingOnly = TRUE)
if (length(args) != 3 || !(args[1] %in% c("glmgampoi", "deseq2_glmgampoi"))) {
  stop("usage: Rscript bench_glmgampoi.R glmgampoi|deseq2_glmgampoi DATA_PREFIX OUT_TSV")
}
mode <- args[1]; prefix <- args[2]; out_file <- args[3]

cat("blas", sessionInfo()$BLAS, "\n")
s <- read.delim(paste0(prefix, "_samples.tsv"), colClasses = "character")
s$patient <- factor(s$patient)
s$timepoint <- relevel(factor(s$timepoint), ref = "pre")
rownames(s) <- s$sample
x <- as.matrix(read.delim(paste0(prefix, "_counts.tsv"), row.names = 1, check.names = FALSE))
x <- x[, s$sample]

t0 <- proc.time()[["elapsed"]]
if (mode == "glmgampoi") {
  sf <- estimateSizeFactorsForMatrix(x)
  fit <- glm_gp(x, design = ~ patient + timepoint, col_data = s, size_factors = sf)
  res <- test_de(fit, contrast = timepointpost)
  out <- data.frame(gene = res$name, mean_expr = rowMeans(sweep(x, 2, fit$size_factors, "/")),
                    log2fc = res$lfc, lfc_se = NA_real_, stat = res$f_statistic,
                    pvalue = res$pval, padj = res$adj_pval)
} else {
  dds <- DESeqDataSetFromMatrix(x, colData = s, design = ~ patient + timepoint)
  dds <- DESeq(dds, fitType = "glmGamPoi", quiet = TRUE)
  res <- results(dds, contrast = c("timepoint", "post", "pre"))
  out <- data.frame(gene = rownames(res), mean_expr = res$baseMean, log2fc = res$log2FoldChange,
                    lfc_se = res$lfcSE, stat = res$stat, pvalue = res$pvalue, padj = res$padj)
}
cat("compute_seconds", proc.time()[["elapsed"]] - t0, "\n")
for (j in seq_along(out)) {
  if (is.double(out[[j]])) out[[j]] <- ifelse(is.na(out[[j]]), "NA", sprintf("%.17g", out[[j]]))
}
tmp <- paste0(out_file, ".part")
write.table(out, tmp, sep = "\t", quote = FALSE, row.names = FALSE)
invisible(file.rename(tmp, out_file))
