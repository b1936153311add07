FROM busybox
ENV A=<<EOF
