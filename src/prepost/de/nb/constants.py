"""DESeq2 1.38's numeric constants that several steps of prepost.de.nb share."""

from __future__ import annotations

import numpy as np


MIN_DISP = 1e-8
MINMU = 0.5
KAPPA_0 = 1.0
DISP_TOL = 1e-6
MAXIT = 100
BETA_TOL = 1e-8
LAMBDA = 1e-6 / np.log(2) ** 2  # DESeq2's ridge, given on the log2 scale
