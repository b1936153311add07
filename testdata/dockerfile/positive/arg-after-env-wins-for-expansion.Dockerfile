FROM busybox
ENV X=env
ARG X
ENV Y=$X
ARG X=argval
ENV Z=$X
RUN echo "$X"
