FROM busybox AS base
FROM base AS base2
FROM base2
