FROM busybox
ARG M=rwx
COPY --chmod=$M a b
