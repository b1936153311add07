FROM busybox AS base
FROM base AS x
FROM base AS y
FROM scratch
COPY --from=x / /x
COPY --from=y / /y
