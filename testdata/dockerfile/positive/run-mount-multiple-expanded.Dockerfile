FROM busybox
ARG CACHE=/cache
RUN --mount=type=cache,target=$CACHE --mount=type=tmpfs,dst=/t true
