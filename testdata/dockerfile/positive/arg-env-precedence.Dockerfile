FROM busybox
ARG X=fromarg
ENV X=fromenv
ARG X=again
ENV Y=$X
