# Reference results from R (limma, DESeq2) for the paired pre/post tests in prepost.
#
# Reads the inputs written by simulate.py and writes, with 17 significant digits:
#   arrays_limma.tsv      lmFit(~patient + timepoint) + eBayes, topTable(coef="timepointpost",
#                         number=Inf, sort.by="none"), plus df_total, sigma, s2_prior, df_prior
#   arrays_inf_limma.tsv  the same on the equal-variance dataset (df.prior = Inf)
#   counts_deseq2.tsv     DESeq(~patient + timepoint), results(contrast=c("timepoint","post","pre"))
#   versions.txt          R, limma and DESeq2 versions
#
# Usage: Rscript benchmarks/r_reference/reference.R [DIR]   (DIR default tests/fixtures/de)

suppressPackageStartupMessages({
  library(limma)
  library(DESeq2)
})

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args) >= 1) args[1] else "tests/fixtures/de"

fmt <- function(df) {
  for (j in seq_along(df)) {
    if (is.double(df[[j]])) df[[j]] <- ifelse(is.na(df[[j]]), "NA", sprintf("%.17g", df[[j]]))
  }
  df
}
write_out <- function(df, name) {
  write.table(fmt(df), file.path(dir, name), sep = "\t", quote = FALSE, row.names = FALSE)
}
read_samples <- function(name) {
  s <- read.delim(file.path(dir, name), colClasses = "character")
  s$patient <- factor(s$patient)
  s$timepoint <- relevel(factor(s$timepoint), ref = "pre")
  s
}

run_limma <- function(expr_file, samples_file, out_file) {
  s <- read_samples(samples_file)
  x <- as.matrix(read.delim(file.path(dir, expr_file), row.names = 1, check.names = FALSE,
                            na.strings = "NA"))
  x <- x[, s$sample]
  design <- model.matrix(~ patient + timepoint, data = s)
  fit <- eBayes(lmFit(x, design))
  tt <- topTable(fit, coef = "timepointpost", number = Inf, sort.by = "none", adjust.method = "BH")
  out <- data.frame(gene = rownames(tt), logFC = tt$logFC, AveExpr = tt$AveExpr, t = tt$t,
                    P.Value = tt$P.Value, adj.P.Val = tt$adj.P.Val, B = tt$B,
                    df_total = fit$df.total[match(rownames(tt), rownames(fit))],
                    df_residual = fit$df.residual[match(rownames(tt), rownames(fit))],
                    sigma = fit$sigma[match(rownames(tt), rownames(fit))],
                    s2_prior = fit$s2.prior, df_prior = fit$df.prior)
  write_out(out, out_file)
}

run_limma("arrays_expr.tsv", "arrays_samples.tsv", "arrays_limma.tsv")
run_limma("arrays_inf_expr.tsv", "arrays_inf_samples.tsv", "arrays_inf_limma.tsv")

s <- read_samples("counts_samples.tsv")
cts <- as.matrix(read.delim(file.path(dir, "counts.tsv"), row.names = 1, check.names = FALSE))
cts <- cts[, s$sample]
rownames(s) <- s$sample
dds <- DESeqDataSetFromMatrix(cts, colData = s, design = ~ patient + timepoint)
dds <- DESeq(dds, quiet = TRUE)
res <- results(dds, contrast = c("timepoint", "post", "pre"))
write_out(data.frame(gene = rownames(res), baseMean = res$baseMean,
                     log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
                     pvalue = res$pvalue, padj = res$padj), "counts_deseq2.tsv")

writeLines(c(R.version.string,
             paste("limma", as.character(packageVersion("limma"))),
             paste("DESeq2", as.character(packageVersion("DESeq2")))),
           file.path(dir, "versions.txt"))
