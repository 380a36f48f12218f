# syntax=docker/dockerfile:1
# One image for the generator (`csgen run`) and the operator (`csgen operator`).
#
#   docker build -t ghcr.io/csgen/csgen:0.1.0 .
#
# The build stage turns the project and its runtime dependencies into wheels;
# the final stage installs them from there, so no compiler, build tool or
# test extra reaches the image. It runs as uid 10001, never as root.

FROM python:3.11-slim AS build
WORKDIR /src
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
COPY pyproject.toml README.md ./
COPY generator ./generator
COPY operator ./operator
# The project's wheel and a wheel for every runtime dependency (no extras).
RUN python -m pip wheel --wheel-dir /wheels .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN groupadd --gid 10001 csgen \
    && useradd --uid 10001 --gid 10001 --no-create-home --home-dir /var/lib/csgen \
       --shell /usr/sbin/nologin csgen \
    && install -d -o 10001 -g 10001 -m 0750 /var/lib/csgen
# Installed from the build stage's wheels only, through a bind mount, so the
# wheels take no layer of their own.
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    python -m pip install --no-index --find-links=/wheels csgen \
    && csgen --version
# Spool files of undelivered events are written to the working directory;
# with a read-only root file system, mount a volume here.
WORKDIR /var/lib/csgen
USER 10001:10001
ENTRYPOINT ["csgen"]
CMD ["--help"]
