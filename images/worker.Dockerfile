# syntax=docker/dockerfile:1
# The dataworks worker: runs built-in steps and StreamingJob consumers (DuckDB, Parquet, fsspec with sftp, http
# and s3, psycopg). Build from the repository root:
#   docker build -f images/worker.Dockerfile -t ghcr.io/dataworks/worker:0.1.0 .
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --upgrade pip==25.3 \
 && /venv/bin/pip install --no-cache-dir ".[s3,streams]"

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.source="https://github.com/dataworks/dataworks" \
      org.opencontainers.image.description="dataworks step worker"
# psycopg's binary wheel bundles libpq; paramiko and DuckDB are wheels too. OpenSSH's
# sftp client moves key-authenticated sftp fetches (about twice paramiko's throughput).
# Not pinned to a Debian revision on purpose: security updates replace it in the archive.
RUN apt-get update \
 && apt-get install -y --no-install-recommends openssh-client \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 HOME=/tmp
WORKDIR /tmp
USER 65532:65532
ENTRYPOINT ["dataworks-worker"]
