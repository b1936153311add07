ARG V=global
FROM busybox:$V
ARG V
ENV E=$V
