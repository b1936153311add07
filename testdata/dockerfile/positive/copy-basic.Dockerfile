FROM busybox
COPY a b /dst/
