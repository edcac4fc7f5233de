# kedro-runs serving the bundled demo project. Build: docker build -t kedro-runs .
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    KEDRO_DISABLE_TELEMETRY=1 \
    DO_NOT_TRACK=1

# A numeric user, so an orchestrator that requires a non-root user (Kubernetes'
# runAsNonRoot) can check it without reading /etc/passwd.
RUN groupadd --gid 10001 runs && useradd --create-home --uid 10001 --gid 10001 runs
WORKDIR /srv/kedro-runs

COPY pyproject.toml README.md ./
COPY app ./app
RUN pip install --no-cache-dir .

COPY --chown=10001:10001 examples/spaceflights ./project
# Owned by the service user, so a named volume mounted here is writable.
RUN mkdir -p /srv/kedro-runs/state && chown 10001:10001 /srv/kedro-runs/state
USER 10001:10001

# Inside a container the service must listen beyond loopback to be reachable, and it
# refuses to without API keys: run with KEDRO_RUNS_API_KEYS (kedro-runs new-key), or
# with KEDRO_RUNS_INSECURE=true and the port published on the host's loopback only
# (as compose.yaml does).
ENV KEDRO_RUNS_PROJECT=/srv/kedro-runs/project \
    KEDRO_RUNS_HOST=0.0.0.0 \
    KEDRO_RUNS_PORT=8000
EXPOSE 8000
# Exec form (no shell in the way) and the port the service really listens on, so a
# container started with another KEDRO_RUNS_PORT stays healthy.
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('KEDRO_RUNS_PORT', '8000') + '/readyz', timeout=2)"]
CMD ["kedro-runs", "serve"]
