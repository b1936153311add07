FROM busybox
COPY /src <<EOF
hello
EOF
