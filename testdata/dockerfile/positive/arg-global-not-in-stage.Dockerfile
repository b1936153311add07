ARG V=global
FROM busybox
ENV E=${V:-unset}
