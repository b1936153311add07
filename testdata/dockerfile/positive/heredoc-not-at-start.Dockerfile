FROM busybox
RUN cat >/etc/x.conf <<EOF && echo done
key=value
EOF
