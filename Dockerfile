# Hearth's server image. Media (UDP) needs the host network or a published UDP range:
# docker-compose.yml uses network_mode: host for that reason.
FROM python:3.11-slim
WORKDIR /app
COPY pyproject.toml README.md ./
COPY rooms rooms
COPY signaling signaling
COPY server server
COPY web web
RUN pip install --no-cache-dir -e .
ENV HEARTH_HOST=0.0.0.0 HEARTH_DATA_DIR=/data
VOLUME /data
EXPOSE 8080
CMD ["hearth", "serve"]
