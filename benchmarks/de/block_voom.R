# limma-voom on a partly paired cohort, for benchmarks/de/block_gse91061.py and bench_block.py:
#   block:  filterByExpr + TMM, voom, duplicateCorrelation, voom(block, cor), duplicateCorrelation,
#           lmFit(block, cor), eBayes; design ~ timepoint on every sample
#   paired: filterByExpr + TMM, voom, lmFit, eBayes; design ~ patient + timepoint on complete pairs
#   arrays: duplicateCorrelation + lmFit(block) + eBayes on log2 values (no voom)
# Usage: Rscript block_voom.R MODE counts.tsv samples.tsv out_prefix   (MODE block|paired|arrays)
suppressPackageStartupMessages({ library(limma); library(edgeR) })
a <- commandArgs(trailingOnly = TRUE)
mode <- a[1]
x <- as.matrix(read.delim(a[2], row.names = 1, check.names = FALSE))
s <- read.delim(a[3], colClasses = "character")
x <- x[, s$sample]
tp <- factor(s$timepoint, levels = c("pre", "post"))
fmt <- function(v) ifelse(is.na(v), "NA", sprintf("%.17g", v))
t0 <- proc.time()[["elapsed"]]
if (mode == "paired") {
  design <- model.matrix(~ factor(s$patient) + tp)
  keep <- filterByExpr(x, design)
  d <- calcNormFactors(DGEList(x)[keep, , keep.lib.sizes = FALSE])
  fit <- eBayes(lmFit(voom(d, design), design))
  rho <- NA
} else if (mode == "block") {
  design <- model.matrix(~ tp)
  keep <- filterByExpr(x, design)
  d <- calcNormFactors(DGEList(x)[keep, , keep.lib.sizes = FALSE])
  v <- voom(d, design)
  c1 <- duplicateCorrelation(v, design, block = s$patient)
  v <- voom(d, design, block = s$patient, correlation = c1$consensus.correlation)
  c2 <- duplicateCorrelation(v, design, block = s$patient)
  fit <- eBayes(lmFit(v, design, block = s$patient, correlation = c2$consensus.correlation))
  rho <- c2$consensus.correlation
} else {
  design <- model.matrix(~ tp)
  dc <- duplicateCorrelation(x, design, block = s$patient)
  fit <- eBayes(lmFit(x, design, block = s$patient, correlation = dc$consensus.correlation))
  rho <- dc$consensus.correlation
}
elapsed <- proc.time()[["elapsed"]] - t0
k <- ncol(design)
out <- data.frame(gene = rownames(fit), logFC = fmt(fit$coefficients[, k]), t = fmt(fit$t[, k]),
                  P.Value = fmt(fit$p.value[, k]), AveExpr = fmt(fit$Amean))
write.table(out, paste0(a[4], ".results.tsv"), sep = "\t", quote = FALSE, row.names = FALSE)
writeLines(c("key\tvalue", paste0("seconds\t", elapsed), paste0("correlation\t", fmt(rho)),
             paste0("limma\t", packageVersion("limma")), paste0("edgeR\t", packageVersion("edgeR"))),
           paste0(a[4], ".info.tsv"))
