FROM scratch AS out
COPY --from=later /x /x
FROM busybox AS later
