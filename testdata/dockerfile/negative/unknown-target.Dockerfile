FROM busybox AS build
FROM scratch
