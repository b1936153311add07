ARG V=global
FROM busybox
ARG V=local
ENV E=$V
