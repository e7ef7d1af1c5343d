# divide-support API server. Runs against DATABASE_URL (a PostgreSQL server, as the service role);
# run `divide-support migrate` once per release (e.g. as a one-off container with DATABASE_OWNER_URL,
# the owner of the tables, as well) before rolling out. See SECURITY.md.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY divide_support ./divide_support
COPY migrations ./migrations
COPY seeds ./seeds
RUN pip install . && rm -rf /app/*

RUN useradd --create-home --uid 10001 divide
USER divide
WORKDIR /home/divide
ENV DIVIDE_SUPPORT_DATA_DIR=/home/divide/data

EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=20s --retries=3 \
  CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status == 200 else 1)"

# uvicorn handles SIGTERM gracefully: in-flight requests finish, then the pool closes.
STOPSIGNAL SIGTERM
CMD ["divide-support", "serve", "--host", "0.0.0.0", "--port", "8000"]
