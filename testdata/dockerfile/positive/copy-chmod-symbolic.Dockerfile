FROM busybox
COPY --chmod=u+x,go-w a /a
