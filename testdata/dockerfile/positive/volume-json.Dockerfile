FROM busybox
VOLUME ["/data", "/logs"]
