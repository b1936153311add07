FROM busybox
COPY ["a", 1, "/b"]
