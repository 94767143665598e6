# One image for the API, the worker and the one-shot migration.
FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1
WORKDIR /app
COPY requirements.lock ./
RUN pip install -r requirements.lock
COPY pyproject.toml README.md alembic.ini ./
COPY services ./services
COPY migrations ./migrations
COPY sop_catalog ./sop_catalog
RUN pip install --no-deps . && useradd --system --uid 10001 alur
USER alur
EXPOSE 8000
CMD ["alur", "serve", "--host", "0.0.0.0", "--port", "8000"]
