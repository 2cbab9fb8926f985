# One image for the Airflow services and the Spark master/worker of docker-compose.yml.
FROM python:3.11-slim-bookworm

RUN apt-get update \
 && apt-get install -y --no-install-recommends openjdk-17-jre-headless libpostgresql-jdbc-java \
      postgresql-client procps \
 && rm -rf /var/lib/apt/lists/*

WORKDIR /opt/promoflow
COPY pyproject.toml requirements.lock ./
# The lock pins the CPU build of torch; on a CUDA host install the matching torch build instead.
RUN pip install --no-cache-dir uv \
 && sed -i 's/^torch==2.13.0+cpu/torch==2.13.0/' requirements.lock \
 && uv pip install --system --no-cache --compile-bytecode -r requirements.lock
COPY . .
RUN uv pip install --system --no-deps -e .
ENV SPARK_HOME=/usr/local/lib/python3.11/site-packages/pyspark \
    PROMO_WORK_DIR=/data \
    AIRFLOW_HOME=/opt/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/promoflow/dags
