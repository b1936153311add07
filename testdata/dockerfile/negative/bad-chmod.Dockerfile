FROM busybox
COPY --chmod=999 a b
