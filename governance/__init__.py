"""Content governance: embed uploads, classify them against exemplar banks, flag anomalies, cluster."""
