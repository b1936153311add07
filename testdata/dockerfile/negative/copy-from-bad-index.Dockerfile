FROM busybox
FROM scratch
COPY --from=7 /x /x
