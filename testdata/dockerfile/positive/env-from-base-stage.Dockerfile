FROM busybox AS a
ENV X=1
FROM a
ENV Y=${X}2
