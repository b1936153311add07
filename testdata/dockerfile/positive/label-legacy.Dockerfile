FROM busybox
LABEL description this is a label
