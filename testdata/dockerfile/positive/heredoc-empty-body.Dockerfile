FROM busybox
COPY <<EOF /empty
EOF
