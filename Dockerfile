# One image for every service in docker-compose.yml: the web server (`arena serve`), the migration job
# (`arena db upgrade`) and the model service (`arena modelsvc`). See docs/scaling.md.
#
#   docker build -t adversarial-arena .                       # CPU torch wheels (small image)
#   docker build -t adversarial-arena-gpu \
#       --build-arg TORCH_INDEX_URL=https://pypi.org/simple .  # PyPI's Linux wheels bundle CUDA (large image)
#   docker build --build-arg EXTRAS="[ray]" ...                # add Ray Serve for `arena modelsvc --backend ray`
#
# torch comes from TORCH_INDEX_URL: the PyTorch CPU index by default, which keeps the CUDA libraries (several GB)
# out of the web image. For the GPU model service use PyPI (its torch wheels for Linux bundle CUDA) or a CUDA index
# of download.pytorch.org matching the host driver. The development machine installs the same versions from PyPI.
FROM python:3.11-slim-bookworm

ARG TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu
ARG EXTRAS=""

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

# The Fashion-MNIST data pack comes from Debian, like on the development machine (ARENA_DATA_DIR's default).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends dataset-fashion-mnist \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /srv/arena

# Dependencies first (a layer that survives code changes): torch from the chosen index, then the rest.
RUN pip install --index-url "${TORCH_INDEX_URL}" torch==2.14.1 torchvision==0.29.1
COPY pyproject.toml README.md ./
COPY app ./app
# Editable install: the app finds alembic/, templates/, static/ and models/ next to app/ (app.config.PROJECT_ROOT).
RUN pip install -e ".${EXTRAS}"

COPY alembic.ini ./
COPY alembic ./alembic
COPY templates ./templates
COPY static ./static
COPY models ./models

RUN useradd --system --uid 10001 --home-dir /srv/arena arena && mkdir -p var && chown arena var
USER arena

ENV ARENA_HOST=0.0.0.0 \
    ARENA_PORT=8000
EXPOSE 8000 8100

CMD ["arena", "serve", "--no-migrate"]
