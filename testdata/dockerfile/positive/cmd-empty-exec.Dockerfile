FROM busybox
CMD []
