"""Published findings checked claim by claim: the catalogue, evidence and verdicts per dataset,
standardised effects, the random-effects pool and published DE tables."""
