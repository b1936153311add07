FROM busybox
RUN --mount=type=cache,targt=/x true
