FROM busybox
RUN --mount=type=bind,target=/x,size=10m true
