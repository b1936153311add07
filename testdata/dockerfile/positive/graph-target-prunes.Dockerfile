FROM busybox AS a
RUN echo a
FROM busybox AS b
RUN echo b
FROM a AS c
RUN echo c
