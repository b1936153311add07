FROM busybox AS deps
FROM busybox
RUN --mount=type=bind,from=deps,source=/lib,target=/mnt/lib,ro true
