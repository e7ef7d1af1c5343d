"""Survey baselines and participation reports by age band."""
