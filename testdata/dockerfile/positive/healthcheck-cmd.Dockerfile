FROM busybox
HEALTHCHECK --interval=30s --timeout=3s --start-period=1m --start-interval=5s --retries=3 CMD wget -q localhost || exit 1
