FROM alpine AS a
RUN true
FROM alpine AS a
RUN true
