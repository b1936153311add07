FROM scratch
COPY --from=busybox:latest /bin/busybox /busybox
