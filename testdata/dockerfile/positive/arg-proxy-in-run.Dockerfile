FROM busybox
RUN env
