ARG V=global
FROM busybox
ARG V
ENV E=$V
