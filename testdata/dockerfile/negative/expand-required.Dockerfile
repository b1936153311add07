FROM busybox
ARG REQUIRED
ENV A=${REQUIRED:?must_be_set}
