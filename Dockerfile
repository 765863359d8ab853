# One image for every Steward deployable; the command picks which one runs:
#   docker run steward:latest collector --host 0.0.0.0 --port 4318
#   docker run steward:latest processor canary-latency
#   docker run -v steward-data:/data steward:latest api --host 0.0.0.0 --port 8080 --data-dir /data
# Health checks live in docker-compose.yml (the image has no curl; they use python's urllib).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

# A fixed, unprivileged uid/gid. /data is created here, owned by that user, so that a named
# volume mounted there starts out writable by it (Docker copies the directory's ownership
# into an empty named volume).
RUN groupadd --system --gid 10001 steward \
 && useradd --system --uid 10001 --gid steward --create-home --home-dir /home/steward \
        --shell /usr/sbin/nologin steward \
 && mkdir -p /data \
 && chown steward:steward /data

# Install as root into the system site-packages; run as the unprivileged user below.
WORKDIR /src
COPY . .
RUN pip install --no-cache-dir . \
 && rm -rf build ./*.egg-info

WORKDIR /home/steward
USER steward:steward

# collector (OTLP/HTTP), api, processor metrics (when STEWARD_METRICS_PORT is set)
EXPOSE 4318 8080 9464

ENTRYPOINT ["steward"]
CMD ["--help"]
