FROM busybox AS a
COPY --from=a /x /y
