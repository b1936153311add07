FROM busybox
RUN --mount=type=tmpfs,target=/tmp,size=64m true
