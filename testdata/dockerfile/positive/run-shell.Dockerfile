FROM busybox
RUN echo "hello world" && ls -l /
