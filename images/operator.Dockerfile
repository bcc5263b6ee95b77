# syntax=docker/dockerfile:1
# The dataworks operator. Build from the repository root:
#   docker build -f images/operator.Dockerfile -t ghcr.io/dataworks/operator:0.1.0 .
# Stage 1 builds a wheel; stage 2 installs only the runtime dependencies into a venv;
# the final image is the slim Python base with that venv, running as 65532.
FROM python:3.11.14-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY src ./src
RUN python -m venv /venv \
 && /venv/bin/pip install --no-cache-dir --upgrade pip==25.3 \
 && /venv/bin/pip install --no-cache-dir ".[streams]"

FROM python:3.11.14-slim-bookworm
LABEL org.opencontainers.image.source="https://github.com/dataworks/dataworks" \
      org.opencontainers.image.description="dataworks Pipeline operator"
COPY --from=build /venv /venv
ENV PATH=/venv/bin:$PATH PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
USER 65532:65532
ENTRYPOINT ["dataworks-operator"]
