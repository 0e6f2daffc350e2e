# One image for the API, the workers and the inference worker; the command picks the role.
FROM python:3.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 \
    HF_HUB_DISABLE_TELEMETRY=1 WEFT_DATA_DIR=/data
WORKDIR /app

# torch first and pinned: an unpinned torch pulls a multi-GB CUDA build. Use a CUDA wheel index
# (build arg TORCH_INDEX) for the GPU inference and training images.
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
RUN pip install --index-url "$TORCH_INDEX" torch==2.13.0

COPY pyproject.toml README.md alembic.ini ./
COPY alembic ./alembic
COPY server ./server
COPY graph ./graph
COPY tasks ./tasks
COPY ml ./ml
COPY setup.py ./
# gcc builds the C modules (the parser's readers, the dataset builder's helpers); without them
# weft still works, with parsing 2-4x slower and dataset builds slower.
RUN apt-get update && apt-get install -y --no-install-recommends gcc libc6-dev \
    && pip install -e ".[ml]" \
    && python -c "import ml.parsing._speedups, ml.datasets._speedups" \
    && apt-get purge -y gcc libc6-dev && apt-get autoremove -y && rm -rf /var/lib/apt/lists/*

RUN useradd --create-home --uid 10001 weft && mkdir -p /data && chown weft /data
USER weft
VOLUME /data
EXPOSE 8000
CMD ["weft", "serve", "--host", "0.0.0.0", "--port", "8000"]
