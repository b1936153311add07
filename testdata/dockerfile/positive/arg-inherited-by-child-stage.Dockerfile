FROM busybox AS a
ARG X=1
ENV E=2
FROM a
ENV Y=${X:-unset} Z=$E
