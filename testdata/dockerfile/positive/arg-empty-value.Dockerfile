FROM busybox
ARG EMPTY=
ENV X=${EMPTY-unset} Y=${EMPTY:-unsetorempty}
