FROM busybox:1.36 AS build
RUN true
