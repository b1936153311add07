FROM busybox
ENV D=/opt/app
ARG F=file.txt
COPY $F ${D}/
WORKDIR $D
