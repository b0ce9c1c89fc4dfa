# One image for the whole platform: KFP steps, RayJob head and workers, the serving Deployment, the
# drift CronJob and the dashboard. Entrypoint `apparel`; the project and every dependency pinned.
#   docker build -t ghcr.io/apparel-mlops/apparel:0.1.0 .                              # CPU
#   docker build --build-arg VARIANT=gpu -t ghcr.io/apparel-mlops/apparel:0.1.0-gpu .  # GPU (faiss-gpu)
# The tag is what `pipeline.base_image` names (src/apparel/config.py; configs/cluster.yaml uses -gpu).
ARG PYTHON_IMAGE=python:3.11.14-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
ARG VARIANT=cpu
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/apparel
ENV PATH=/opt/apparel/bin:$PATH
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY src src
COPY components components
COPY pipelines pipelines
# The project's own install, under the one lock that `make setup` and CI install from too (scripts/lock.py).
RUN case "${VARIANT}" in cpu|gpu) ;; *) echo "VARIANT must be cpu or gpu" >&2; exit 1;; esac \
    && pip install --no-cache-dir --constraint constraints.txt ".[${VARIANT},cluster]"

FROM ${PYTHON_IMAGE} AS runtime
# wget: KubeRay's probes on Ray head and worker pods call it.
RUN apt-get update \
    && apt-get install -y --no-install-recommends wget=1.21.3-1+deb12u1 \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 apparel \
    && useradd --uid 10001 --gid 10001 --create-home --home-dir /home/apparel --shell /bin/bash apparel
COPY --from=build /opt/apparel /opt/apparel
ENV PATH=/opt/apparel/bin:$PATH \
    HOME=/home/apparel \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    RAY_USAGE_STATS_ENABLED=0 \
    MPLCONFIGDIR=/tmp/matplotlib
WORKDIR /home/apparel
# Numeric, so Kubernetes can check runAsNonRoot (uid 10001 is what the charts and RayJob pods run as).
USER 10001:10001
ENTRYPOINT ["apparel"]
CMD ["--help"]
