FROM busybox
RUN ["/bin/sh", "-c", "echo hi"]
