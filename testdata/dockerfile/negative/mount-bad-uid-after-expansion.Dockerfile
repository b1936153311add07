FROM busybox
ARG U=root
RUN --mount=type=cache,target=/x,uid=$U true
