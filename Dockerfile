# Hearth's image: the locked dependencies (requirements.lock, pip-tools with hashes), then the
# wheel built from this checkout, run as a user without privileges. Media needs UDP: the
# compose file publishes HEARTH_MEDIA_PORTS, the same range inside and out (docs/deploy.md).
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md requirements.lock ./
COPY rooms rooms
COPY signaling signaling
COPY server server
COPY web web
RUN pip install --no-cache-dir build && python -m build --wheel --outdir /wheels .

FROM python:3.11-slim
# libopus0: the audio path decodes with FEC and concealment through opuslib-next, which loads
# the system's libopus (PyAV's wheel keeps its own copy private).
RUN apt-get update && apt-get install -y --no-install-recommends libopus0 \
    && rm -rf /var/lib/apt/lists/*
COPY requirements.lock /tmp/requirements.lock
RUN pip install --no-cache-dir --require-hashes -r /tmp/requirements.lock
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-deps /wheels/*.whl && rm -rf /wheels \
    && useradd --system --uid 10001 --home-dir /data --create-home hearth
USER hearth
ENV HEARTH_HOST=0.0.0.0 HEARTH_PORT=8080 HEARTH_DATA_DIR=/data HEARTH_PRODUCTION=1
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=3s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/readyz', timeout=2)"]
CMD ["hearth", "serve"]
