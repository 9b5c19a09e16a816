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

# ---- contrasts beyond post vs pre (resp_* inputs from simulate.py) -------------------------
# Sample selection is written out here independently of prepost.contrasts:
#   responder_vs_non_responder_pre: usable pre samples with a known response (incl. unpaired),
#     ~ response, response relevelled to non_responder, coef "responseresponder"
#   within-group: complete pairs with a known response, limma User's Guide 9.7 style design
#     cbind(model.matrix(~patient), post.non_responder, post.responder), coef per group
#   interaction: same pairs, cbind(model.matrix(~patient), post, post.responder),
#     coef "post.responder"
#   post_vs_pre: all complete pairs (also those with unknown response), ~ patient + timepoint
# Writes resp_arrays_limma.tsv, resp_paired_checks.tsv (t.test / wilcox.test paired=TRUE on
# a few genes) and resp_counts_deseq2.tsv (one DESeq fit of the within-group design; the
# interaction as the numeric contrast post.responder - post.non_responder).

read_sheet <- function(name) {
  s <- read.delim(file.path(dir, name), colClasses = "character", na.strings = "")
  s$response[is.na(s$response)] <- ""
  s
}
limma_table <- function(fit, coef, contrast) {
  tt <- topTable(fit, coef = coef, number = Inf, sort.by = "none", adjust.method = "BH")
  data.frame(contrast = contrast, gene = rownames(tt), logFC = tt$logFC, AveExpr = tt$AveExpr,
             t = tt$t, P.Value = tt$P.Value, adj.P.Val = tt$adj.P.Val,
             df_total = fit$df.total[match(rownames(tt), rownames(fit))])
}
within_design <- function(p) {
  post <- p$timepoint == "post"
  cbind(model.matrix(~patient, data = p),
        post.non_responder = as.numeric(post & p$response == "non_responder"),
        post.responder = as.numeric(post & p$response == "responder"))
}

rs <- read_sheet("resp_arrays_samples.tsv")
rx <- as.matrix(read.delim(file.path(dir, "resp_arrays_expr.tsv"), row.names = 1,
                           check.names = FALSE, na.strings = "NA"))
out <- list()
pre <- rs[rs$timepoint == "pre" & rs$usable == "True" & rs$response != "", ]
pre$response <- relevel(factor(pre$response), ref = "non_responder")
fit <- eBayes(lmFit(rx[, pre$sample], model.matrix(~response, data = pre)))
out[[1]] <- limma_table(fit, "responseresponder", "responder_vs_non_responder_pre")

pr <- rs[rs$in_pair == "True" & rs$response != "", ]
pr$patient <- factor(pr$patient)
fit <- eBayes(lmFit(rx[, pr$sample], within_design(pr)))
out[[2]] <- limma_table(fit, "post.responder", "post_vs_pre_responder")
out[[3]] <- limma_table(fit, "post.non_responder", "post_vs_pre_non_responder")
post <- pr$timepoint == "post"
mm <- cbind(model.matrix(~patient, data = pr), post = as.numeric(post),
            post.responder = as.numeric(post & pr$response == "responder"))
fit <- eBayes(lmFit(rx[, pr$sample], mm))
out[[4]] <- limma_table(fit, "post.responder", "interaction")

ap <- rs[rs$in_pair == "True", ]
ap$patient <- factor(ap$patient)
ap$timepoint <- relevel(factor(ap$timepoint), ref = "pre")
fit <- eBayes(lmFit(rx[, ap$sample], model.matrix(~patient + timepoint, data = ap)))
out[[5]] <- limma_table(fit, "timepointpost", "post_vs_pre")
write_out(do.call(rbind, out), "resp_arrays_limma.tsv")

safe_p <- function(f) tryCatch(f(), error = function(e) NA_real_)
checks <- list()
for (cn in c("post_vs_pre", "post_vs_pre_responder")) {
  pp <- if (cn == "post_vs_pre") ap else pr[pr$response == "responder", ]
  pts <- sort(unique(as.character(pp$patient)))
  pre_s <- paste0(pts, "_pre"); post_s <- paste0(pts, "_post")
  for (g in sprintf("g%04d", 1:12)) {
    a <- rx[g, post_s]; b <- rx[g, pre_s]; d <- a - b
    checks[[length(checks) + 1]] <- data.frame(
      contrast = cn, gene = g, n_pairs = sum(!is.na(d)), n_up = sum(d > 0, na.rm = TRUE),
      n_down = sum(d < 0, na.rm = TRUE),
      paired_t_p = safe_p(function() t.test(a, b, paired = TRUE)$p.value),
      wilcoxon_p = safe_p(function() wilcox.test(a, b, paired = TRUE)$p.value))
  }
}
write_out(do.call(rbind, checks), "resp_paired_checks.tsv")

cs <- read_sheet("resp_counts_samples.tsv")
cc <- as.matrix(read.delim(file.path(dir, "resp_counts.tsv"), row.names = 1, check.names = FALSE))
cs <- cs[cs$in_pair == "True" & cs$response != "", ]
cs$patient <- factor(cs$patient)
rownames(cs) <- cs$sample
mm <- within_design(cs)
dds <- DESeqDataSetFromMatrix(cc[, cs$sample], colData = cs, design = ~patient)
dds <- DESeq(dds, full = mm, quiet = TRUE)
nm <- resultsNames(dds)
ic <- as.numeric(nm == "post.responder") - as.numeric(nm == "post.non_responder")
res_list <- list(post_vs_pre_responder = results(dds, name = "post.responder"),
                 post_vs_pre_non_responder = results(dds, name = "post.non_responder"),
                 interaction = results(dds, contrast = ic))
write_out(do.call(rbind, lapply(names(res_list), function(cn) {
  r <- res_list[[cn]]
  data.frame(contrast = cn, gene = rownames(r), baseMean = r$baseMean,
             log2FoldChange = r$log2FoldChange, lfcSE = r$lfcSE, stat = r$stat,
             pvalue = r$pvalue, padj = r$padj)
})), "resp_counts_deseq2.tsv")

# ---- covariates, unpaired counts, Cook's outliers (cov_* inputs from simulate.py) ----------
# prepost drops covariates that are constant within patients (age, site) from paired designs
# (the patient block absorbs them) and keeps them in the unpaired one; R gets the designs that
# result, written out here by hand:
#   post_vs_pre (+batch):                    ~ patient + batch + timepoint
#   post_vs_pre_responder (+batch):          cbind(model.matrix(~patient + batch),
#                                                  post.non_responder, post.responder)
#   interaction (+batch):                    cbind(model.matrix(~patient + batch), post,
#                                                  post.responder)
#   responder_vs_non_responder_pre (+batch, age, site): ~ batch + age + site + response
#   responder_vs_non_responder_pre (no covariates, counts only; suffix "_plain"): ~ response,
#     7 responder and 5 non-responder pre samples: DESeq2 replaces the Cook's outlier of
#     c0003 (cell of 7) and sets the p-value of c0004 (cell of 5) to NA
# Writes cov_arrays_limma.tsv and cov_counts_deseq2.tsv (with DESeq2's maxCooks and replace).
cv <- read.delim(file.path(dir, "cov_samples.tsv"), colClasses = "character")
cv$age <- as.numeric(cv$age)
cv$batch <- factor(cv$batch)
cv$site <- factor(cv$site)
cv$patient <- factor(cv$patient)
cv$timepoint <- relevel(factor(cv$timepoint), ref = "pre")
cv$response <- relevel(factor(cv$response), ref = "non_responder")
rownames(cv) <- cv$sample
post <- as.numeric(cv$timepoint == "post")
resp <- as.numeric(cv$response == "responder")
paired_mm <- list(
  post_vs_pre = list(model.matrix(~patient + batch + timepoint, data = cv), "timepointpost"),
  post_vs_pre_responder = list(cbind(model.matrix(~patient + batch, data = cv),
                                     post.non_responder = post * (1 - resp),
                                     post.responder = post * resp), "post.responder"),
  interaction = list(cbind(model.matrix(~patient + batch, data = cv), post = post,
                           post.responder = post * resp), "post.responder"))
pre_cv <- droplevels(cv[cv$timepoint == "pre", ])
pre_mm <- model.matrix(~batch + age + site + response, data = pre_cv)

ax <- as.matrix(read.delim(file.path(dir, "cov_arrays_expr.tsv"), row.names = 1,
                           check.names = FALSE))
out <- list()
for (cn in names(paired_mm)) {
  fit <- eBayes(lmFit(ax[, cv$sample], paired_mm[[cn]][[1]]))
  out[[cn]] <- limma_table(fit, paired_mm[[cn]][[2]], cn)
}
fit <- eBayes(lmFit(ax[, pre_cv$sample], pre_mm))
out[["pre"]] <- limma_table(fit, "responseresponder", "responder_vs_non_responder_pre")
write_out(do.call(rbind, out), "cov_arrays_limma.tsv")

cx <- as.matrix(read.delim(file.path(dir, "cov_counts.tsv"), row.names = 1, check.names = FALSE))
deseq_table <- function(dds, res, contrast) {
  data.frame(contrast = contrast, gene = rownames(res), baseMean = res$baseMean,
             log2FoldChange = res$log2FoldChange, lfcSE = res$lfcSE, stat = res$stat,
             pvalue = res$pvalue, padj = res$padj, maxCooks = mcols(dds)$maxCooks,
             replaced = if (is.null(mcols(dds)$replace)) FALSE else mcols(dds)$replace)
}
out <- list()
for (cn in names(paired_mm)) {
  dds <- DESeqDataSetFromMatrix(cx[, cv$sample], colData = cv, design = ~patient)
  dds <- DESeq(dds, full = paired_mm[[cn]][[1]], quiet = TRUE)
  out[[cn]] <- deseq_table(dds, results(dds, name = paired_mm[[cn]][[2]]), cn)
}
dds <- DESeqDataSetFromMatrix(cx[, pre_cv$sample], colData = pre_cv,
                              design = ~batch + age + site + response)
dds <- DESeq(dds, quiet = TRUE)
out[["pre"]] <- deseq_table(dds, results(dds, name = "response_responder_vs_non_responder"),
                            "responder_vs_non_responder_pre")
dds <- DESeqDataSetFromMatrix(cx[, pre_cv$sample], colData = pre_cv, design = ~response)
dds <- DESeq(dds, quiet = TRUE)
out[["plain"]] <- deseq_table(dds, results(dds, name = "response_responder_vs_non_responder"),
                              "responder_vs_non_responder_pre_plain")
write_out(do.call(rbind, out), "cov_counts_deseq2.tsv")
