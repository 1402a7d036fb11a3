# syntax=docker/dockerfile:1
#
# The acd server as an image: wheels are built in the first stage (compilers
# stay there), the second is a slim Python with the wheels installed, run by a
# user without privileges. The database schema is migrated by the server itself
# at every start (api/store/migrate.py), so the image needs no separate step.
#
#   docker build -t acd .
#   docker run -p 8080:8080 -e ACD_JWT_SECRET=... -e ACD_DEMO=true acd   # demo centre on SQLite
#   docker compose -f deploy/compose.yaml up --build           # with PostgreSQL, Prometheus, Grafana

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS builder
# uvloop, httptools and asyncpg ship binary wheels for the usual platforms; the
# compiler is here for the platforms that have none.
RUN apt-get update \
    && apt-get install -y --no-install-recommends build-essential \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY acd ./acd
COPY cti ./cti
COPY api ./api
COPY ivr ./ivr
COPY migrations ./migrations
# The project and every dependency as wheels: the runtime installs from here only.
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="acd" \
      org.opencontainers.image.description="ACD/CTI contact-centre routing server" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 acd \
    && useradd --system --uid 10001 --gid acd --home-dir /var/lib/acd --no-create-home \
       --shell /usr/sbin/nologin acd \
    && install -d -o acd -g acd -m 0750 /var/lib/acd
COPY --from=builder /wheels /tmp/wheels
RUN pip install --no-cache-dir --no-index --find-links /tmp/wheels acd \
    && rm -rf /tmp/wheels
# Listen on every interface of the container; keep what the server writes (the
# SQLite database when no ACD_DATABASE_URL is given, the spool that holds events
# while the database is unreachable, the token key file) in the one volume.
ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    ACD_HOST=0.0.0.0 \
    ACD_PORT=8080 \
    ACD_DATABASE_URL=sqlite+aiosqlite:////var/lib/acd/acd.db \
    ACD_SPOOL_PATH=/var/lib/acd/acd.spool \
    ACD_SECRET_FILE=/var/lib/acd/acd.secret
WORKDIR /var/lib/acd
VOLUME ["/var/lib/acd"]
USER 10001:10001
# HTTP (REST, CTI WebSocket, /metrics); SIP when ACD_SIP_PORT=5060 is set.
EXPOSE 8080/tcp 5060/udp 5060/tcp
# The slim image has no curl: Python asks /livez (the event loop answers).
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
    CMD python -c "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/livez' % os.environ.get('ACD_PORT', '8080'), timeout=2)"
# SIGTERM drains (calls in progress may end, up to ACD_DRAIN_SECONDS); give
# `docker stop` a longer --time than that.
STOPSIGNAL SIGTERM
ENTRYPOINT ["acd"]
CMD ["serve"]
