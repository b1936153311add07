FROM busybox
RUN --network=none true
RUN --network=host --security=insecure true
