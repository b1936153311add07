FROM busybox
ARG REQUIRED
ENV A=${REQUIRED:?must be set}
