FROM busybox
ARG V=1
ENV E="quoted"
COPY <<EOF /cfg
v=$V e="$E" ${MISSING:-d}
EOF
