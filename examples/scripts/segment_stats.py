"""A fan-out worker script: per-segment revenue statistics of this worker's chunk.

The worker runtime gives it WORKER_INDEX, TOTAL_WORKERS, DATAWORKS_INPUT (a
parquet file of the chunk) and DATAWORKS_OUTPUT (where to write parquet).
"""

import os

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

index = int(os.environ["WORKER_INDEX"])
chunk = pq.read_table(os.environ["DATAWORKS_INPUT"])
print(f"worker {index}/{os.environ['TOTAL_WORKERS']}: {chunk.num_rows} orders", flush=True)
rows = []
segments = sorted(set(chunk.column("segment").to_pylist())) if chunk.num_rows else []
for n, segment in enumerate(segments, 1):
    part = chunk.filter(pc.equal(chunk.column("segment"), segment))
    totals = part.column("total_amount")
    rows.append(
        {
            "segment": segment,
            "worker": index,
            "orders": part.num_rows,
            "revenue": pc.sum(totals).as_py(),
            "average_order": pc.mean(totals).as_py(),
        }
    )
    print(f"PROGRESS: {100 * n / len(segments):.1f}%", flush=True)
pq.write_table(pa.Table.from_pylist(rows), os.environ["DATAWORKS_OUTPUT"])
