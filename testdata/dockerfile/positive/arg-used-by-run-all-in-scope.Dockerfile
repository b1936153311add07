FROM busybox
ARG A=1 B=2
RUN true
COPY ${A} /
