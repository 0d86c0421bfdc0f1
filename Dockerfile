# Serves an edge bundle over HTTP with only the edge dependencies (no torch).
#   docker build -t yeo-serve .
#   docker run --rm -p 8000:8000 -v "$PWD/edge/bundles/yolov8n-synthetic-v1:/bundle:ro" yeo-serve
# The bundle is mounted read-only at /bundle; the server refuses to start if it fails
# edge.verify. Limits: --max-bytes / --max-pixels (see python -m edge.serve --help).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
# OpenVINO too: a bundle chosen on it (metadata.json runtime.backend) runs on it here
COPY edge/requirements.txt edge/requirements-serve.txt edge/requirements-openvino.txt /app/edge/
RUN pip install --no-cache-dir -r /app/edge/requirements-serve.txt \
        -r /app/edge/requirements-openvino.txt \
    && useradd --create-home --uid 10001 --shell /usr/sbin/nologin app
COPY edge/*.py /app/edge/

USER 10001
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8000/health', timeout=4)"]
CMD ["python", "-m", "edge.serve", "/bundle", "--host", "0.0.0.0", "--port", "8000"]
