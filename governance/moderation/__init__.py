"""Deciding uploads: the pipelines, kNN, vote, anomaly, policy, banks, review, calibration."""
