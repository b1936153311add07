FROM busybox
ARG V=1
COPY <<"EOF" /a
value $V
EOF
COPY <<'X' /b
$V
X
