FROM busybox
ENTRYPOINT exec top -b
