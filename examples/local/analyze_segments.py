"""The seed's `analyze_segments.py`: spend and conversions per segment and channel of this worker's chunk."""

import os

import duckdb

con = duckdb.connect()
con.execute(
    "COPY (SELECT segment, channel, count(*) AS campaigns, sum(spend) AS spend, sum(conversions) AS conversions, "
    "round(sum(spend) / nullif(sum(conversions), 0), 2) AS cost_per_conversion "
    f"FROM read_parquet('{os.environ['DATAWORKS_INPUT']}') GROUP BY ALL ORDER BY ALL) "
    f"TO '{os.environ['DATAWORKS_OUTPUT']}' (FORMAT parquet)"
)
print("PROGRESS: 100.0%", flush=True)
