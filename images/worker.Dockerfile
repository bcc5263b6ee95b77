# syntax=docker/dockerfile:1
# The dataworks worker: runs built-in steps (DuckDB, Parquet, fsspec with sftp, http
# and s3, psycopg). Build from the repository root:
#   docker build -f images/worker.Dockerfile -t ghcr.io/dataworks/worker:0.1.0 .
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --upgrade pip==25.3 \
 && /venv/bin/pip install --no-cache-dir ".[s3]"

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.source="https://github.com/dataworks/dataworks" \
      org.opencontainers.image.description="dataworks step worker"
# psycopg's binary wheel bundles libpq; paramiko (sftp) and DuckDB are wheels too,
# so the runtime image needs no compiler and no extra Debian packages.
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["dataworks-worker"]
