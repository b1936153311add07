FROM alpine AS scratch
RUN true
FROM alpine AS context
