FROM busybox
ARG USED
RUN echo $USED
