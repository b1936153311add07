FROM busybox
RUN --mount=from=alpine:3,target=/a true
