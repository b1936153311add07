FROM busybox
ARG P=abc
EXPOSE $P
