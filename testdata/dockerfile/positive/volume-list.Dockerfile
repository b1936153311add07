FROM busybox
ENV V=/v
VOLUME /data $V
