FROM busybox
ENV --foo=bar A=1
