FROM busybox
EXPOSE 80 443/tcp 53/udp 8000-8010/tcp
