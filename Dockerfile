# syntax=docker/dockerfile:1.7
# Images of kb, built by your CI (these development machines have no container engine):
#   docker build --target serve  -t registry.example.com/kb/kb-serve:0.1.0 .
#   docker build --target worker -t registry.example.com/kb/kb-worker:0.1.0 .
# serve: the chat endpoint without torch; the query encoder is ONNX, exported once in the
# `model` stage (which has torch) and copied in. Versions come from requirements.lock.
ARG PYTHON_IMAGE=python:3.11.11-slim-bookworm

# -- wheels: kb and every locked dependency, built once -----------------------------------------
FROM ${PYTHON_IMAGE} AS wheels
WORKDIR /src
COPY pyproject.toml README.md LICENSE requirements.lock ./
COPY pipeline ./pipeline
RUN pip wheel --no-cache-dir --no-deps --wheel-dir /wheels . \
 && grep -v -E '^(torch|nvidia|triton)' requirements.lock > /wheels/serve-constraints.txt

# -- model: export all-MiniLM-L6-v2 to ONNX (needs torch; nothing of this stage is shipped) -----
FROM ${PYTHON_IMAGE} AS model
WORKDIR /src
COPY --from=wheels /wheels /wheels
COPY requirements.lock ./
ENV HF_HUB_OFFLINE=1 OMP_NUM_THREADS=1
RUN pip install --no-cache-dir -c requirements.lock /wheels/kb_atoms-*.whl'[embed,onnx]' \
 && kb embed onnx --out /model

# -- serve: kb serve over a read-only bundle volume, as a non-root user -------------------------
FROM ${PYTHON_IMAGE} AS serve
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir -c /wheels/serve-constraints.txt /wheels/kb_atoms-*.whl'[serve,otel]' onnxruntime tokenizers \
 && rm -rf /wheels \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kb --create-home kb \
 && mkdir -p /var/lib/kb/bundles && chown 10001:10001 /var/lib/kb/bundles
COPY --from=model --chown=10001:10001 /model /opt/kb/model
ENV KB_EMBED_BACKEND=onnx \
    KB_EMBED_MODEL=/opt/kb/model \
    KB_SERVE_HOST=0.0.0.0 \
    KB_SERVE_PORT=8000 \
    KB_THREADS=1 \
    HF_HUB_OFFLINE=1 \
    PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/kb
EXPOSE 8000
VOLUME ["/var/lib/kb/bundles"]
# /healthz answers once the server listens (the bundle may still be loading; /readyz says when).
HEALTHCHECK --interval=30s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=2).status != 200)"]
ENTRYPOINT ["kb"]
CMD ["serve", "--bundle", "/var/lib/kb/bundles", "--watch"]

# -- worker: kb worker with the LLM and index extras (ASR workers add [asr]/[whisperx] and a GPU) --
FROM ${PYTHON_IMAGE} AS worker
COPY --from=wheels /wheels /wheels
RUN pip install --no-cache-dir -c /wheels/serve-constraints.txt /wheels/kb_atoms-*.whl'[workers,llm,serve,site,otel]' onnxruntime tokenizers \
 && rm -rf /wheels \
 && useradd --system --uid 10001 --user-group --home-dir /var/lib/kb --create-home kb
COPY --from=model --chown=10001:10001 /model /opt/kb/model
ENV KB_EMBED_BACKEND=onnx KB_EMBED_MODEL=/opt/kb/model KB_THREADS=1 HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
USER 10001:10001
WORKDIR /var/lib/kb
EXPOSE 9808
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9808/metrics', timeout=4).status != 200)"]
ENTRYPOINT ["kb"]
CMD ["worker", "--queues", "llm,index"]
