FROM busybox
LABEL a="unterminated
