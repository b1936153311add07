FROM busybox
RUN --mount=target=/src,source=.,rw true
