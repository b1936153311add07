FROM busybox
RUN echo a \
    b \
    c
