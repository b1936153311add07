FROM busybox
ARG V=default
ENV E=$V
