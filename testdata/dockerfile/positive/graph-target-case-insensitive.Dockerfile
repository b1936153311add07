FROM busybox AS Build
FROM scratch
