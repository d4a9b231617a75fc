# AffectWatch services image (ingest worker, scheduler, dashboard, simulator).
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 AFFECTWATCH_DATA_DIR=/var/lib/affectwatch
WORKDIR /app
COPY pyproject.toml README.md ./
COPY affectwatch ./affectwatch
COPY ingest ./ingest
COPY analytics ./analytics
COPY alerts ./alerts
COPY dashboard ./dashboard
COPY analyst ./analyst
COPY demo ./demo
COPY sql ./sql
COPY config ./config
COPY data ./data
COPY schemas ./schemas
RUN pip install --no-cache-dir -e . \
 && useradd --system --uid 10001 affectwatch \
 && mkdir -p /var/lib/affectwatch && chown affectwatch /var/lib/affectwatch
USER affectwatch
ENTRYPOINT ["affectwatch"]
CMD ["--help"]
