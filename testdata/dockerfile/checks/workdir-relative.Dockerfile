FROM alpine
WORKDIR app
WORKDIR more
FROM alpine
WORKDIR /abs
WORKDIR rel
