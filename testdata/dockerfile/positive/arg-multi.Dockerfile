FROM busybox
ARG A=1 B C="x y"
RUN echo $A $B $C
