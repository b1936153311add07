ARG A=1
ARG B=${A}2 C=$B
FROM busybox:$B$C
