"""The pieces of scripts/bench.py: a throw-away PostgreSQL with pg_stat_statements, the data
set, the hand-written baseline, uvicorn and wrk, and the report and SMS benchmarks."""
