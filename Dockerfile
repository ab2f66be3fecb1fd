# The relay as a slim, non-root image. `relay serve` runs the API and the delivery worker;
# `docker run … relay worker` runs a worker alone (see docs/deployment.md).
#
#   docker build -t infusionsoft-relay .
#   docker run -p 127.0.0.1:8000:8000 -v relay-data:/data -v "$PWD/relay.yaml:/app/relay.yaml:ro" \
#     --env-file .env infusionsoft-relay
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_ROOT_USER_ACTION=ignore

# Dependencies first, from the lock file alone, so this layer is rebuilt only when the
# lock changes and not on every code change.
COPY requirements.lock /tmp/requirements.lock
RUN pip install --requirement /tmp/requirements.lock && rm /tmp/requirements.lock

# Then the relay itself; every dependency is already installed from the lock.
COPY pyproject.toml README.md /src/
COPY app /src/app
RUN pip install --no-deps /src && rm -rf /src

# A system user that owns nothing but its data directory.
RUN groupadd --system relay \
    && useradd --system --gid relay --no-create-home --home-dir /nonexistent \
       --shell /usr/sbin/nologin relay \
    && mkdir -p /app /data \
    && chown relay:relay /data

# SQLite (the default, for a single container) lives under /data; with PostgreSQL
# (RELAY_DATABASE_URL=postgresql://…) nothing is written there.
VOLUME ["/data"]
WORKDIR /app
ENV RELAY_DATABASE_URL=sqlite:////data/relay.db \
    RELAY_CONFIG=/app/relay.yaml \
    RELAY_HOST=0.0.0.0 \
    RELAY_PORT=8000

USER relay
EXPOSE 8000

# /healthz answers while the process serves; python's urllib needs no curl in the image.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/healthz' % os.environ.get('RELAY_PORT', '8000'), timeout=4)"]

CMD ["relay", "serve"]
