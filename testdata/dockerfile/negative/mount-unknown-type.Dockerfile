FROM busybox
RUN --mount=type=cahce,target=/x true
