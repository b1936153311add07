FROM busybox
ENV T=${TARGETPLATFORM:-undeclared}
