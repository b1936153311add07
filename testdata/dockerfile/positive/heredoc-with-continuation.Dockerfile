FROM busybox
RUN <<EOF \
  sh
echo hi
EOF
