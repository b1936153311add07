FROM busybox
COPY onlysource
