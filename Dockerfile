# cgt-gateway image: the gateway and the firmware simulator, nothing else.
# Dependencies come from the same pins as the development venv (constraints.txt).

FROM python:3.11-slim-bookworm AS build
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY gateway ./gateway
COPY firmware_sim ./firmware_sim
COPY config ./config
RUN pip install --no-cache-dir --constraint constraints.txt hatchling==1.33.0 \
 && pip wheel --no-cache-dir --no-build-isolation --constraint constraints.txt --wheel-dir /wheels .

FROM python:3.11-slim-bookworm
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
# The monthly bulletin's PDF (WeasyPrint): Pango, HarfBuzz's subsetter, and CJK fonts.
# Pinned to bookworm's versions, as the base image is.
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      libpango-1.0-0=1.50.12+ds-1 libpangoft2-1.0-0=1.50.12+ds-1 \
      libharfbuzz-subset0=6.0.0+dfsg-3 fonts-noto-cjk=1:20220127+repack1-1 \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir --no-index --find-links /wheels cgt-gateway==0.1.0 \
 && rm -rf /wheels \
 && useradd --system --uid 10001 --home-dir /var/lib/cgt --create-home cgt
USER 10001
WORKDIR /var/lib/cgt
VOLUME ["/var/lib/cgt"]
# /metrics (Prometheus) and /healthz
EXPOSE 9464
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9464/healthz', timeout=4)"]
ENTRYPOINT ["gateway"]
CMD ["run", "--data-dir", "/var/lib/cgt", "--broker", "mqtt://mosquitto:1883", "--metrics", "0.0.0.0:9464"]
