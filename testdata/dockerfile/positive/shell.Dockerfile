FROM busybox
SHELL ["/bin/sh", "-eux", "-c"]
RUN echo hi
