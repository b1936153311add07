FROM busybox
HEALTHCHECK CMD ["true"]
