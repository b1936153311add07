FROM busybox AS first
FROM first
RUN true
