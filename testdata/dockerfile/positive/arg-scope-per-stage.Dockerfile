FROM busybox AS a
ARG V=a
FROM busybox AS b
ENV E=${V:-none}
